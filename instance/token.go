package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
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
		return Token{}, &FileError{Path: path, Problem: "no token file", Fix: `run "instance-sync setup" or "instance-sync init --token-file=FILE" to create it`}
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
		return Token{}, &FileError{Path: path, Problem: err.Error(), Fix: `run "instance-sync init --force --token-file=FILE" to rewrite it`}
	}
	return t, nil
}

// WriteToken writes a token file with mode 0600 (its missing folders
// private, see MkdirPrivate).
func WriteToken(path string, t Token) error {
	return WriteSecret(path, []byte(t.User+":"+t.Password+"\n"))
}

// readableByOthers reports whether a secret's file grants any access to
// its group or others (Windows has no such bits to check).
func readableByOthers(fi fs.FileInfo) bool {
	return runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0
}

// MoveLegacyToken moves the token an older version kept in the pack folder
// (.cloud-sync/token, where a launcher's export would ship it) to path.
// moved is false when there was none. A token for another user than
// sync.json's is left where it is, and is an error.
func (p Paths) MoveLegacyToken(path, user string) (moved bool, err error) {
	if _, err := os.Lstat(p.LegacyToken()); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	t, err := ReadToken(p.LegacyToken())
	if err != nil {
		return false, err
	}
	if t.User != user {
		return false, &FileError{Path: p.LegacyToken(), Problem: fmt.Sprintf("token is for user %q but sync.json names %q", t.User, user),
			Fix: `run "instance-sync init --force" with the right token`}
	}
	if err := WriteToken(path, t); err != nil {
		return false, err
	}
	if err := os.Remove(p.LegacyToken()); err != nil {
		return false, err
	}
	return true, nil
}
