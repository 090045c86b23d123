package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/internal/atomicfile"
)

// Token is the player's account: user name and password. The password is
// also the restic repository password.
type Token struct {
	User     string
	Password string
}

// ParseToken parses "user:password".
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" || pass == "" || strings.ContainsAny(user, "/\n") || strings.Contains(pass, "\n") {
		return Token{}, errors.New(`a token has the form USER:PASSWORD`)
	}
	return Token{User: user, Password: pass}, nil
}

// String never shows the password, so a token printed by mistake leaks
// nothing.
func (t Token) String() string { return t.User + ":********" }

// ReadToken reads a token file. On Unix a file that other users can read is
// refused, the way ssh refuses a private key.
func ReadToken(path string) (Token, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Token{}, &FileError{Path: path, Problem: "no token file", Fix: `run "instance-sync setup" or "instance-sync init --token=USER:PASSWORD" to create it`}
	}
	if err != nil {
		return Token{}, err
	}
	if readableByOthers(fi) {
		return Token{}, &FileError{Path: path, Problem: fmt.Sprintf("token is readable by other users (mode %04o)", fi.Mode().Perm()),
			Fix: fmt.Sprintf(`run "chmod 600 %s"`, path)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Token{}, err
	}
	t, err := ParseToken(string(data))
	if err != nil {
		return Token{}, &FileError{Path: path, Problem: err.Error(), Fix: `run "instance-sync init --force --token=USER:PASSWORD" to rewrite it`}
	}
	return t, nil
}

// WriteToken writes a token file with mode 0600.
func WriteToken(path string, t Token) error {
	return atomicfile.Write(path, []byte(t.User+":"+t.Password+"\n"), 0o600)
}

// readableByOthers reports whether a secret's file grants any access to
// its group or others (Windows has no such bits to check).
func readableByOthers(fi fs.FileInfo) bool {
	return runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0
}
