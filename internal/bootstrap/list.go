package bootstrap

// Words of a job's dictionary (in KeyJobs of OpList's and OpPrint's
// replies, and KeyEvent) that say what the job serves and where its
// definition stands.
const (
	// KeyMachServices: the service names the job serves, its
	// MachServices keys (strings, sorted). Every name is at most
	// launchd.MaxServiceNameLen bytes; the reply as a whole is bounded as
	// any of xpcd's replies is.
	KeyMachServices = "mach_services"
	// KeyPlistDeleted (true): the job was loaded from one of its domain's
	// directories and that plist has been deleted. The job is not
	// launched again and is unloaded once its running instance has
	// exited; a plist put back at the same path before then reloads it
	// (docs/XPCD.md, "Plists that are deleted").
	KeyPlistDeleted = "plist_deleted"
)
