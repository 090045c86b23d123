package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// inputs writes the files of a small archive, with the given mtime and
// mode on disk, which must not reach the archive.
func inputs(t *testing.T, mtime time.Time, perm os.FileMode) []entry {
	t.Helper()
	dir := t.TempDir()
	var es []entry
	for _, f := range []struct {
		name, body string
		exec       bool
	}{
		{"instance-sync.exe", "MZ program", true},
		{"restic-0.18.1.exe", "MZ restic", true},
		{"README.md", "# read me\n", false},
	} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte(f.body), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{name: f.name, path: p, exec: f.exec})
	}
	return es
}

// Two archives of the same files, touched at different times and with
// different permissions on disk, are byte-identical, and every header
// carries the release's time, root ownership and a fixed mode.
func TestArchivesAreDeterministic(t *testing.T) {
	epoch := time.Date(2026, 11, 30, 5, 17, 6, 0, time.UTC)
	a := inputs(t, time.Now(), 0o600)
	b := inputs(t, time.Now().Add(-48*time.Hour), 0o777)
	for _, name := range []string{"x.zip", "x.tar.gz"} {
		pa := filepath.Join(t.TempDir(), name)
		pb := filepath.Join(t.TempDir(), name)
		if err := writeArchive(pa, a, epoch); err != nil {
			t.Fatal(err)
		}
		if err := writeArchive(pb, b, epoch); err != nil {
			t.Fatal(err)
		}
		da, _ := os.ReadFile(pa)
		db, _ := os.ReadFile(pb)
		if !bytes.Equal(da, db) {
			t.Errorf("%s: two writes of the same files differ", name)
		}

		var got []string
		if strings.HasSuffix(name, ".zip") {
			zr, err := zip.NewReader(bytes.NewReader(da), int64(len(da)))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range zr.File {
				got = append(got, f.Name)
				if !f.Modified.Equal(epoch) {
					t.Errorf("%s %s: time %v, want %v", name, f.Name, f.Modified, epoch)
				}
				if want := wantMode(f.Name); f.Mode().Perm() != want {
					t.Errorf("%s %s: mode %v, want %v", name, f.Name, f.Mode().Perm(), want)
				}
				rc, _ := f.Open()
				body, _ := io.ReadAll(rc)
				rc.Close()
				checkBody(t, a, f.Name, body)
			}
		} else {
			gz, err := gzip.NewReader(bytes.NewReader(da))
			if err != nil {
				t.Fatal(err)
			}
			if !gz.ModTime.IsZero() || gz.Name != "" {
				t.Errorf("gzip header carries time %v, name %q", gz.ModTime, gz.Name)
			}
			tr := tar.NewReader(gz)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, h.Name)
				if !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s %s: header %+v", name, h.Name, h)
				}
				if want := wantMode(h.Name); os.FileMode(h.Mode) != want {
					t.Errorf("%s %s: mode %o, want %o", name, h.Name, h.Mode, want)
				}
				body, _ := io.ReadAll(tr)
				checkBody(t, a, h.Name, body)
			}
		}
		if want := []string{"instance-sync.exe", "restic-0.18.1.exe", "README.md"}; !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v in that order", name, got, want)
		}
	}
}

func wantMode(name string) os.FileMode {
	if strings.HasSuffix(name, ".exe") {
		return 0o755
	}
	return 0o644
}

func checkBody(t *testing.T, es []entry, name string, body []byte) {
	t.Helper()
	for _, e := range es {
		if e.name == name {
			want, _ := os.ReadFile(e.path)
			if !bytes.Equal(body, want) {
				t.Errorf("%s: body %q, want %q", name, body, want)
			}
			return
		}
	}
	t.Errorf("unexpected entry %s", name)
}

func TestFourPart(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":              "1.2.3.0",
		"1.2.3.4":             "1.2.3.4",
		"v0.9.0-5-gabcdef":    "0.9.0.0",
		"v2.0.0-rc.1":         "2.0.0.0",
		"v1.2.3-dirty":        "1.2.3.0",
		"571fca0":             "0.0.0.0", // a bare commit hash has no version
		"dev":                 "0.0.0.0",
		"v70000.1.2":          "0.0.0.0",
		"v1.2.3.4.5":          "1.2.3.4",
		"":                    "0.0.0.0",
		"v10.20.30-4-gdeadbe": "10.20.30.0",
	} {
		if got := fourPart(in); got != want {
			t.Errorf("fourPart(%q) = %q, want %q", in, got, want)
		}
	}
}

// Rules from winget's 1.6.0 manifest schemas (their required properties,
// patterns and lengths), for the fields these manifests use.
var (
	wingetIDPattern      = regexp.MustCompile(`^[^.\s\\/:*?"<>|\x01-\x1f]{1,32}(\.[^.\s\\/:*?"<>|\x01-\x1f]{1,32}){1,7}$`)
	wingetVersionPattern = regexp.MustCompile(`^[^\\/:*?"<>|\x01-\x1f]+$`)
	sha256Pattern        = regexp.MustCompile(`^[A-Fa-f0-9]{64}$`)
	wingetRequired       = map[string][]string{
		"version":       {"PackageIdentifier", "PackageVersion", "DefaultLocale", "ManifestType", "ManifestVersion"},
		"installer":     {"PackageIdentifier", "PackageVersion", "Installers", "ManifestType", "ManifestVersion"},
		"defaultLocale": {"PackageIdentifier", "PackageVersion", "PackageLocale", "Publisher", "PackageName", "License", "ShortDescription", "ManifestType", "ManifestVersion"},
	}
	wingetKnown = map[string][]string{
		"version":       {"PackageIdentifier", "PackageVersion", "DefaultLocale", "ManifestType", "ManifestVersion"},
		"installer":     {"PackageIdentifier", "PackageVersion", "InstallerType", "NestedInstallerType", "NestedInstallerFiles", "ArchiveBinariesDependOnPath", "ReleaseDate", "Installers", "ManifestType", "ManifestVersion"},
		"defaultLocale": {"PackageIdentifier", "PackageVersion", "PackageLocale", "Publisher", "PackageName", "PackageUrl", "License", "Copyright", "ShortDescription", "Tags", "ManifestType", "ManifestVersion"},
	}
)

// checkManifests validates the Scoop and winget manifests under dir against
// the archive they describe.
func checkManifests(t *testing.T, dir, version, url string, archive []byte) {
	t.Helper()
	sum := sha256.Sum256(archive)
	digest := hex.EncodeToString(sum[:])
	pkgVersion := strings.TrimPrefix(version, "v")

	// Scoop: only fields of Scoop's schema, the ones it requires, and an
	// architecture entry whose hash is the archive's.
	raw, err := os.ReadFile(filepath.Join(dir, "scoop", "instance-sync.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sc); err != nil {
		t.Fatalf("scoop manifest is not JSON: %v", err)
	}
	scoopKnown := []string{"version", "description", "homepage", "license", "notes", "architecture", "bin", "url", "hash", "extract_dir", "checkver", "autoupdate", "depends", "persist", "shortcuts"}
	for k := range sc {
		if !slices.Contains(scoopKnown, k) {
			t.Errorf("scoop manifest has unknown field %q", k)
		}
	}
	for _, k := range []string{"version", "homepage", "license"} {
		if _, ok := sc[k]; !ok {
			t.Errorf("scoop manifest lacks required %q", k)
		}
	}
	var scv struct {
		Version      string
		Bin          string
		Architecture map[string]struct{ URL, Hash string }
	}
	json.Unmarshal(raw, &scv)
	arch := scv.Architecture["64bit"]
	if scv.Version != pkgVersion || scv.Bin != "instance-sync.exe" || arch.URL != url || arch.Hash != digest {
		t.Errorf("scoop manifest: version %q bin %q url %q hash %q; want %q instance-sync.exe %q %q", scv.Version, scv.Bin, arch.URL, arch.Hash, pkgVersion, url, digest)
	}
	if !strings.Contains(string(raw), "restic-0.18.1.exe") {
		t.Error("scoop manifest does not mention the bundled restic")
	}

	// winget: the three files where winget-pkgs keeps them, each with its
	// schema's required fields and patterns, and the installer pointing at
	// the archive by URL and SHA-256.
	wdir := filepath.Join(dir, "winget", "manifests", "t", "Timemachine", "InstanceSync", pkgVersion)
	docs := map[string]map[string]any{}
	for file, typ := range map[string]string{
		"Timemachine.InstanceSync.yaml":              "version",
		"Timemachine.InstanceSync.installer.yaml":    "installer",
		"Timemachine.InstanceSync.locale.en-US.yaml": "defaultLocale",
	} {
		raw, err := os.ReadFile(filepath.Join(wdir, file))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s is not YAML: %v", file, err)
		}
		for _, k := range wingetRequired[typ] {
			if _, ok := doc[k]; !ok {
				t.Errorf("%s lacks required %s", file, k)
			}
		}
		for k := range doc {
			if !slices.Contains(wingetKnown[typ], k) {
				t.Errorf("%s has field %s this test does not know", file, k)
			}
		}
		if doc["ManifestType"] != typ || doc["ManifestVersion"] != "1.6.0" {
			t.Errorf("%s: ManifestType %v ManifestVersion %v", file, doc["ManifestType"], doc["ManifestVersion"])
		}
		id, _ := doc["PackageIdentifier"].(string)
		ver, _ := doc["PackageVersion"].(string)
		if !wingetIDPattern.MatchString(id) || !wingetVersionPattern.MatchString(ver) || len(ver) > 128 || ver != pkgVersion {
			t.Errorf("%s: PackageIdentifier %q PackageVersion %q", file, id, ver)
		}
		docs[typ] = doc
	}
	if docs["version"]["DefaultLocale"] != docs["defaultLocale"]["PackageLocale"] {
		t.Errorf("DefaultLocale %v but the locale file is %v", docs["version"]["DefaultLocale"], docs["defaultLocale"]["PackageLocale"])
	}
	inst := docs["installer"]
	if inst["InstallerType"] != "zip" || inst["NestedInstallerType"] != "portable" {
		t.Errorf("installer type %v / %v, want zip / portable", inst["InstallerType"], inst["NestedInstallerType"])
	}
	nested, _ := inst["NestedInstallerFiles"].([]any)
	if len(nested) != 1 || nested[0].(map[string]any)["RelativeFilePath"] != "instance-sync.exe" {
		t.Errorf("NestedInstallerFiles %v", nested)
	}
	if _, err := time.Parse(time.DateOnly, inst["ReleaseDate"].(string)); err != nil {
		t.Errorf("ReleaseDate %v: %v", inst["ReleaseDate"], err)
	}
	installers, _ := inst["Installers"].([]any)
	if len(installers) != 1 {
		t.Fatalf("Installers %v", installers)
	}
	in := installers[0].(map[string]any)
	sha, _ := in["InstallerSha256"].(string)
	if in["Architecture"] != "x64" || in["InstallerUrl"] != url || !sha256Pattern.MatchString(sha) || !strings.EqualFold(sha, digest) {
		t.Errorf("installer entry %v; want x64, %s, %s", in, url, digest)
	}
	loc := docs["defaultLocale"]
	for k, n := range map[string][2]int{"Publisher": {2, 256}, "PackageName": {2, 256}, "License": {3, 512}, "ShortDescription": {3, 256}} {
		s, _ := loc[k].(string)
		if len(s) < n[0] || len(s) > n[1] {
			t.Errorf("%s %q is not %d-%d characters", k, s, n[0], n[1])
		}
	}
	tags, _ := loc["Tags"].([]any)
	for _, tg := range tags {
		if s, _ := tg.(string); s == "" || len(s) > 40 || strings.ContainsAny(s, " \t") {
			t.Errorf("tag %q", tg)
		}
	}
}

func TestManifestsStructure(t *testing.T) {
	archive := []byte("stand-in for the zip's bytes")
	sum := sha256.Sum256(archive)
	dir := t.TempDir()
	url := "https://example.org/dl/v1.4.0/instance-sync_windows_amd64.zip"
	_, err := writeManifests(dir, packageInfo{
		Version: "v1.4.0", URL: url, SHA256: hex.EncodeToString(sum[:]),
		Exe: "instance-sync.exe", Restic: "restic-0.18.1.exe", ReleaseDay: "2026-11-30",
	})
	if err != nil {
		t.Fatal(err)
	}
	checkManifests(t, dir, "v1.4.0", url, archive)
}

// A version that YAML would read as a number stays a string.
func TestWingetVersionStaysString(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeManifests(dir, packageInfo{Version: "v1.10", URL: "https://e/x.zip", SHA256: strings.Repeat("a", 64), Exe: "instance-sync.exe", Restic: "r.exe", ReleaseDay: "2026-11-30"}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, wingetDir("1.10"), "Timemachine.InstanceSync.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["PackageVersion"] != "1.10" {
		t.Errorf("PackageVersion read back as %#v", doc["PackageVersion"])
	}
}

func TestSelectTargets(t *testing.T) {
	got, err := selectTargets("windows/amd64, linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g.archive())
	}
	want := []string{"instance-sync_windows_amd64.zip", "instance-sync_linux_amd64.tar.gz", "cloud-svc_linux_amd64.tar.gz"}
	if !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
	if _, err := selectTargets("plan9/386"); err == nil || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("unknown platform: %v", err)
	}
}

func TestSignerFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if s, err := signerFromEnv(env(nil)); s != nil || err != nil {
		t.Errorf("no certificate: %v, %v", s, err)
	}
	if _, err := signerFromEnv(env(map[string]string{"RELEASE_SIGN_PASSWORD": "x"})); err == nil || !strings.Contains(err.Error(), "RELEASE_SIGN_PKCS12") {
		t.Errorf("password without certificate: %v", err)
	}
	_, err := signerFromEnv(env(map[string]string{"RELEASE_SIGN_PKCS12": "/nonexistent/cert.p12", "RELEASE_SIGN_PASSWORD": "hunter2"}))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/cert.p12") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("missing certificate file: %v", err)
	}
}

// The release empties its output folder, so it refuses one that holds the
// repository or files it did not write; an earlier release's is fine.
func TestSafeToEmpty(t *testing.T) {
	root := t.TempDir()
	if err := safeToEmpty(root, root); err == nil {
		t.Error("the repository itself accepted")
	}
	if err := safeToEmpty(filepath.Dir(root), root); err == nil {
		t.Error("the repository's parent accepted")
	}
	if err := safeToEmpty("/", root); err == nil {
		t.Error("/ accepted")
	}
	out := filepath.Join(t.TempDir(), "dist")
	if err := safeToEmpty(out, root); err != nil {
		t.Errorf("a folder not there yet: %v", err)
	}
	os.MkdirAll(filepath.Join(out, "winget"), 0o755)
	os.WriteFile(filepath.Join(out, "SHA256SUMS"), nil, 0o644)
	os.WriteFile(filepath.Join(out, "instance-sync_windows_amd64.zip"), nil, 0o644)
	if err := safeToEmpty(out, root); err != nil {
		t.Errorf("an earlier release: %v", err)
	}
	os.WriteFile(filepath.Join(out, "notes.txt"), nil, 0o644)
	if err := safeToEmpty(out, root); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("a folder with other files: %v", err)
	}
}
