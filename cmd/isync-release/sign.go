package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// signer signs Windows executables with Authenticode through osslsigncode.
type signer struct {
	pkcs12       string // PKCS#12 file with the certificate and its key
	password     string // never on a command line: osslsigncode reads it from a 0600 file
	timestampURL string // RFC 3161 server; "" signs without a time stamp
}

func signerFromEnv(getenv func(string) string) (*signer, error) {
	p := getenv("RELEASE_SIGN_PKCS12")
	if p == "" {
		if getenv("RELEASE_SIGN_PASSWORD") != "" || getenv("RELEASE_SIGN_TIMESTAMP_URL") != "" {
			return nil, fmt.Errorf("RELEASE_SIGN_PASSWORD or RELEASE_SIGN_TIMESTAMP_URL is set without RELEASE_SIGN_PKCS12; set it to the PKCS#12 certificate file")
		}
		return nil, nil
	}
	if !isFile(p) {
		return nil, fmt.Errorf("RELEASE_SIGN_PKCS12=%s is not a file; point it at the PKCS#12 (.p12/.pfx) code-signing certificate", p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	return &signer{pkcs12: abs, password: getenv("RELEASE_SIGN_PASSWORD"), timestampURL: getenv("RELEASE_SIGN_TIMESTAMP_URL")}, nil
}

// sign writes a signed copy of in to out. The signing time is the release's
// epoch, so without a time stamp the signature, and the archive, are the
// same on every run (RSA PKCS#1 v1.5 signatures are deterministic); a time
// stamp from a server differs each time by nature.
func (s *signer) sign(ctx context.Context, in, out string, epoch time.Time) error {
	dir, err := os.MkdirTemp("", "isync-sign-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pass := filepath.Join(dir, "password")
	if err := os.WriteFile(pass, []byte(s.password), 0o600); err != nil {
		return err
	}
	args := []string{"sign",
		"-pkcs12", s.pkcs12, "-readpass", pass,
		"-h", "sha256",
		"-n", productName, "-i", homepage,
		"-time", strconv.FormatInt(epoch.Unix(), 10),
	}
	if s.timestampURL != "" {
		args = append(args, "-ts", s.timestampURL)
	}
	args = append(args, "-in", in, "-out", out)
	cmd := exec.CommandContext(ctx, "osslsigncode", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sign %s with %s: %w\n%s", filepath.Base(in), s.pkcs12, err, b)
	}
	return nil
}
