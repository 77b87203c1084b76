package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/goxpc/xpc/codesign"
	"github.com/spf13/pflag"
)

// signCommands are the commands that make and check executables'
// signatures (package codesign).
func signCommands() []*command {
	return []*command{keygenCommand, signCommand, verifyCommand, codesignCommand}
}

const trustHelp = `The trust directory is /etc/xpc/trust.d, or $XPCD_ROOT/trust.d when
XPCD_ROOT is set: every *.pub in it is a trusted key.`

var keygenCommand = &command{
	name:    "keygen",
	args:    "PREFIX",
	summary: "make a signing key pair, PREFIX.key and PREFIX.pub",
	help: `Writes a new minisign key pair: PREFIX.key, the private key, unencrypted
and mode 0600 (whoever can read it can sign as any identifier), and
PREFIX.pub, the public key. Copy PREFIX.pub into the trust directory for
what the key signs to be trusted. Existing files are never replaced.

` + trustHelp,
	setup: func(*pflag.FlagSet) runFunc { return runKeygen },
}

var signCommand = &command{
	name:    "sign",
	args:    "-k|--key KEY -i|--identifier IDENTIFIER [-t|--team TEAM] [--xattr] FILE",
	summary: "sign an executable as an identifier and team",
	help: `Signs FILE's contents with the private key KEY (made by keygen, or any
unencrypted minisign key) as IDENTIFIER and TEAM: writes the signature to
FILE.minisig beside it, or with --xattr to FILE's extended attribute
user.xpc.minisig, which wins over a FILE.minisig. Identifiers and teams
are printable ASCII without spaces or = " ' ( ) \, at most 255 and 64
bytes. Changing FILE afterwards breaks the signature.`,
	setup: setupSign,
}

var verifyCommand = &command{
	name:    "verify",
	args:    "[--trust DIR] FILE",
	summary: "check an executable's signature against the trusted keys",
	help: `Checks FILE's signature (its extended attribute user.xpc.minisig, else
FILE.minisig) against the keys of DIR, by default the trust directory.
Prints "FILE: valid" with the identifier, team and key and exits 0 when
the signature is valid for FILE's contents and made by a trusted key;
otherwise prints one line saying why (not signed, bad signature,
untrusted key) and exits 1.

` + trustHelp,
	setup: setupVerify,
}

var codesignCommand = &command{
	name:    "codesign",
	args:    "-d|--display [--trust DIR] FILE",
	summary: "display an executable's signature, as codesign -d does",
	help: `With -d|--display, prints what FILE's signature says, one KEY=VALUE a line:
Executable, Identifier, TeamIdentifier, KeyID, Timestamp, Signature (where
it is kept), SHA256 (of FILE's contents), and Trusted: "yes", or "no: "
and why (checked against DIR, by default the trust directory). Exits 1
when FILE has no signature that parses. To sign, use sign.

` + trustHelp,
	setup: setupCodesign,
}

func runKeygen(ctx context.Context, s stdio, c *command, pos []string) int {
	if len(pos) != 1 {
		return c.usageError(s, "want one PREFIX")
	}
	pub, err := codesign.WriteKeyPair(pos[0])
	if err != nil {
		return c.fail(s, "%s", strings.TrimPrefix(err.Error(), "codesign: "))
	}
	fmt.Fprintf(s.out, "%s.key: private key, keep it secret\n%s.pub: public key %s\n",
		pos[0], pos[0], codesign.FormatKeyID(pub.ID()))
	return exitOK
}

func setupSign(fs *pflag.FlagSet) runFunc {
	keyPath := fs.StringP("key", "k", "", "the private `KEY` file")
	var id codesign.Identity
	fs.StringVarP(&id.Identifier, "identifier", "i", "", "the `IDENTIFIER` to sign as, e.g. org.example.app")
	fs.StringVarP(&id.Team, "team", "t", "", "the `TEAM` to sign as, e.g. ABCDE12345 (none if not given)")
	xattr := fs.Bool("xattr", false, "write the signature to FILE's extended attribute "+codesign.XattrName+", not beside it")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return runSign(s, c, pos, *keyPath, id, *xattr)
	}
}

func runSign(s stdio, c *command, pos []string, keyPath string, id codesign.Identity, xattr bool) int {
	switch {
	case len(pos) != 1:
		return c.usageError(s, "want one FILE")
	case keyPath == "" || id.Identifier == "":
		return c.usageError(s, "--key KEY and --identifier IDENTIFIER are needed")
	}
	if err := id.Validate(); err != nil {
		return c.fail(s, "%v", err)
	}
	key, err := codesign.ReadPrivateKey(keyPath)
	if err != nil {
		return c.fail(s, "%s", strings.TrimPrefix(err.Error(), "codesign: "))
	}
	f, err := openExecutable(pos[0])
	if err != nil {
		return c.fail(s, "%v", err)
	}
	defer f.Close()
	sig, err := codesign.Sign(f, key, id)
	where := pos[0] + codesign.Suffix
	switch {
	case err != nil:
	case xattr:
		where = "xattr " + codesign.XattrName
		err = codesign.WriteXattr(f, sig)
	default:
		err = codesign.WriteBeside(pos[0], sig)
	}
	if err != nil {
		return c.fail(s, "%s", strings.TrimPrefix(err.Error(), "codesign: "))
	}
	fmt.Fprintf(s.out, "%s: signed as %s with key %s, in %s\n", pos[0], id, codesign.FormatKeyID(key.ID()), where)
	if _, err := codesign.Inspect(f, ""); !xattr && !errors.Is(err, codesign.ErrUnsigned) {
		fmt.Fprintf(s.err, "xpcctl sign: note: %s also has a signature in xattr %s, which wins over %s\n",
			pos[0], codesign.XattrName, where)
	}
	return exitOK
}

// openExecutable opens a file to sign or check, without blocking on a
// FIFO.
func openExecutable(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// trustFlag declares --trust.
func trustFlag(fs *pflag.FlagSet) *string {
	return fs.String("trust", codesign.TrustDir(), "the trust `DIR`ectory whose *.pub keys are trusted")
}

func setupVerify(fs *pflag.FlagSet) runFunc {
	dir := trustFlag(fs)
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		if len(pos) != 1 {
			return c.usageError(s, "want one FILE")
		}
		return runVerify(s, c, pos[0], *dir)
	}
}

func runVerify(s stdio, c *command, file, dir string) int {
	pos := []string{file}
	f, err := openExecutable(pos[0])
	if err != nil {
		return c.fail(s, "%v", err)
	}
	defer f.Close()
	v := codesign.NewVerifier(dir)
	info, err := v.Verify(f, pos[0])
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "codesign: ")
		if _, skipped := v.TrustedKeys(); errors.Is(err, codesign.ErrUntrusted) && len(skipped) > 0 {
			msg += fmt.Sprintf(" (%d skipped in the trust directory; %v)", len(skipped), skipped[0])
		}
		return c.fail(s, "%s", msg)
	}
	fmt.Fprintf(s.out, "%s: valid, %s, key %s\n", pos[0], codesign.Identity{Identifier: info.Identifier, Team: info.Team}, info.KeyID)
	return exitOK
}

func setupCodesign(fs *pflag.FlagSet) runFunc {
	dir := trustFlag(fs)
	display := fs.BoolP("display", "d", false, "display FILE's signature")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return runCodesign(s, c, pos, *display, *dir)
	}
}

func runCodesign(s stdio, c *command, pos []string, display bool, dir string) int {
	switch {
	case !display:
		return c.usageError(s, "only -d|--display is supported; use sign to sign, verify to check")
	case len(pos) != 1:
		return c.usageError(s, "want one FILE")
	}
	f, err := openExecutable(pos[0])
	if err != nil {
		return c.fail(s, "%v", err)
	}
	defer f.Close()
	info, err := codesign.Inspect(f, pos[0])
	if err != nil {
		return c.fail(s, "%s", strings.TrimPrefix(err.Error(), "codesign: "))
	}
	v := codesign.NewVerifier(dir)
	digest, err := v.Digest(f)
	if err != nil {
		return c.fail(s, "%s", strings.TrimPrefix(err.Error(), "codesign: "))
	}
	trusted := "yes"
	if _, err := v.Verify(f, pos[0]); err != nil {
		trusted = "no: " + strings.TrimPrefix(err.Error(), "codesign: ")
	}
	team, stamp := info.Team, "none"
	if team == "" {
		team = "not set"
	}
	if !info.Signed.IsZero() {
		stamp = info.Signed.UTC().Format(time.RFC3339)
	}
	abs, err := filepath.Abs(pos[0])
	if err != nil {
		abs = pos[0]
	}
	fmt.Fprintf(s.out, "Executable=%s\nIdentifier=%s\nTeamIdentifier=%s\nKeyID=%s\nTimestamp=%s\nSignature=%s\nSHA256=%s\nTrusted=%s\n",
		abs, info.Identifier, team, info.KeyID, stamp, info.Where, hex.EncodeToString(digest[:]), trusted)
	return exitOK
}
