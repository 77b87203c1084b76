package bootstrap

// BundleProgramProblem says why a job definition loaded on its own (by
// bootstrap, or checked by plist lint) whose BundleProgram is
// bundleProgram and whose Program is program cannot run, or "": a
// BundleProgram is a path inside an application bundle, which only
// package bundle resolves (to Program), when the bundle's application
// registers the job.
func BundleProgramProblem(bundleProgram, program string) string {
	if bundleProgram == "" || program != "" {
		return ""
	}
	return "a path inside an application bundle: register the job through its application (appservice), or name the executable with Program"
}
