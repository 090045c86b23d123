package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// packageInfo is what the package manifests say about the Windows archive.
type packageInfo struct {
	Version    string // as the binary prints it (v1.2.3)
	URL        string // where the archive is downloaded from
	SHA256     string // the archive's digest, lowercase hex
	Exe        string // instance-sync.exe, at the archive's root
	Restic     string // the bundled restic's name, beside Exe
	ReleaseDay string // YYYY-MM-DD
}

// Package identity in winget's community repository and Scoop buckets.
const (
	wingetID        = "Timemachine.InstanceSync"
	wingetSchema    = "1.6.0"
	license         = "MIT"
	resticLicense   = "BSD-2-Clause"
	shortDesc       = "Keeps a Minecraft launcher instance in sync across computers, with restic snapshots"
	wingetPublisher = company
)

// pkgVersion is the version package managers compare: without the tag's v.
func (p packageInfo) pkgVersion() string { return strings.TrimPrefix(p.Version, "v") }

// scoopManifest is a Scoop app manifest. The archive is extracted whole
// into the app folder, so restic stays beside instance-sync.exe; Scoop's
// shim starts the real instance-sync.exe there, which finds it.
type scoopManifest struct {
	Version      string                       `json:"version"`
	Description  string                       `json:"description"`
	Homepage     string                       `json:"homepage"`
	License      string                       `json:"license"`
	Notes        string                       `json:"notes"`
	Architecture map[string]scoopArchitecture `json:"architecture"`
	Bin          string                       `json:"bin"`
}

type scoopArchitecture struct {
	URL  string `json:"url"`
	Hash string `json:"hash"`
}

func scoop(p packageInfo) scoopManifest {
	return scoopManifest{
		Version:     p.pkgVersion(),
		Description: shortDesc,
		Homepage:    homepage,
		// Scoop's license field takes SPDX identifiers, comma-separated.
		License: license + "," + resticLicense,
		Notes:   "restic is bundled as " + p.Restic + " beside " + p.Exe + "; nothing is downloaded at run time.",
		Architecture: map[string]scoopArchitecture{
			"64bit": {URL: p.URL, Hash: p.SHA256},
		},
		Bin: p.Exe,
	}
}

// winget's multi-file manifest: version, installer and default locale.
type wingetVersion struct {
	PackageIdentifier string `yaml:"PackageIdentifier"`
	PackageVersion    string `yaml:"PackageVersion"`
	DefaultLocale     string `yaml:"DefaultLocale"`
	ManifestType      string `yaml:"ManifestType"`
	ManifestVersion   string `yaml:"ManifestVersion"`
}

type wingetInstaller struct {
	PackageIdentifier    string             `yaml:"PackageIdentifier"`
	PackageVersion       string             `yaml:"PackageVersion"`
	InstallerType        string             `yaml:"InstallerType"`
	NestedInstallerType  string             `yaml:"NestedInstallerType"`
	NestedInstallerFiles []wingetNestedFile `yaml:"NestedInstallerFiles"`
	// The folder goes on PATH instead of a link to the exe, because the
	// exe needs the files beside it (the bundled restic).
	ArchiveBinariesDependOnPath bool              `yaml:"ArchiveBinariesDependOnPath"`
	ReleaseDate                 string            `yaml:"ReleaseDate"`
	Installers                  []wingetArchEntry `yaml:"Installers"`
	ManifestType                string            `yaml:"ManifestType"`
	ManifestVersion             string            `yaml:"ManifestVersion"`
}

type wingetNestedFile struct {
	RelativeFilePath string `yaml:"RelativeFilePath"`
}

type wingetArchEntry struct {
	Architecture    string `yaml:"Architecture"`
	InstallerURL    string `yaml:"InstallerUrl"`
	InstallerSha256 string `yaml:"InstallerSha256"`
}

type wingetLocale struct {
	PackageIdentifier string   `yaml:"PackageIdentifier"`
	PackageVersion    string   `yaml:"PackageVersion"`
	PackageLocale     string   `yaml:"PackageLocale"`
	Publisher         string   `yaml:"Publisher"`
	PackageName       string   `yaml:"PackageName"`
	PackageURL        string   `yaml:"PackageUrl"`
	License           string   `yaml:"License"`
	Copyright         string   `yaml:"Copyright"`
	ShortDescription  string   `yaml:"ShortDescription"`
	Tags              []string `yaml:"Tags"`
	ManifestType      string   `yaml:"ManifestType"`
	ManifestVersion   string   `yaml:"ManifestVersion"`
}

func winget(p packageInfo) (wingetVersion, wingetInstaller, wingetLocale) {
	v := p.pkgVersion()
	return wingetVersion{
			PackageIdentifier: wingetID, PackageVersion: v, DefaultLocale: "en-US",
			ManifestType: "version", ManifestVersion: wingetSchema,
		}, wingetInstaller{
			PackageIdentifier: wingetID, PackageVersion: v,
			InstallerType: "zip", NestedInstallerType: "portable",
			NestedInstallerFiles:        []wingetNestedFile{{RelativeFilePath: p.Exe}},
			ArchiveBinariesDependOnPath: true,
			ReleaseDate:                 p.ReleaseDay,
			Installers: []wingetArchEntry{{
				Architecture: "x64", InstallerURL: p.URL, InstallerSha256: strings.ToUpper(p.SHA256),
			}},
			ManifestType: "installer", ManifestVersion: wingetSchema,
		}, wingetLocale{
			PackageIdentifier: wingetID, PackageVersion: v, PackageLocale: "en-US",
			Publisher: wingetPublisher, PackageName: productName, PackageURL: homepage,
			License:          license + " (bundled restic: " + resticLicense + ")",
			Copyright:        copyright,
			ShortDescription: shortDesc,
			Tags:             []string{"minecraft", "sync", "backup", "restic"},
			ManifestType:     "defaultLocale", ManifestVersion: wingetSchema,
		}
}

// wingetDir is where winget-pkgs keeps a version's manifests.
func wingetDir(version string) string {
	publisher, name, _ := strings.Cut(wingetID, ".")
	return filepath.Join("winget", "manifests", strings.ToLower(publisher[:1]), publisher, name, version)
}

// writeManifests writes the Scoop and winget manifests under out and
// returns their paths relative to out.
func writeManifests(out string, p packageInfo) ([]string, error) {
	var files []string
	write := func(rel string, data []byte) error {
		full := filepath.Join(out, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		files = append(files, rel)
		return os.WriteFile(full, data, 0o644)
	}

	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(scoop(p)); err != nil {
		return nil, err
	}
	if err := write(filepath.Join("scoop", productName+".json"), js.Bytes()); err != nil {
		return nil, err
	}

	ver, inst, loc := winget(p)
	dir := wingetDir(p.pkgVersion())
	for _, f := range []struct {
		name, schema string
		doc          any
	}{
		{wingetID + ".yaml", "version", ver},
		{wingetID + ".installer.yaml", "installer", inst},
		{wingetID + ".locale.en-US.yaml", "defaultLocale", loc},
	} {
		var b bytes.Buffer
		fmt.Fprintf(&b, "# yaml-language-server: $schema=https://aka.ms/winget-manifest.%s.%s.schema.json\n", f.schema, wingetSchema)
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(f.doc); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
		if err := write(filepath.Join(dir, f.name), b.Bytes()); err != nil {
			return nil, err
		}
	}
	return files, nil
}
