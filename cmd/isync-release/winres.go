package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/tc-hib/winres"
	"github.com/tc-hib/winres/version"
)

// Product facts shown in Windows' file properties and in the manifests.
const (
	productName = "instance-sync"
	company     = "Timemachine Network"
	copyright   = "Copyright (c) 2026 The instance-sync authors. MIT License; includes restic (BSD-2-Clause)."
	homepage    = "https://git.timemachine.center/timemachine/instance-sync"
)

// descriptions are the FileDescription of each command: Windows shows it
// in Task Manager and in the SmartScreen and UAC prompts.
var descriptions = map[string]string{
	"instance-sync": "instance-sync - keeps a Minecraft instance in sync across computers",
	"cloud-svc":     "cloud-svc - the instance-sync server",
}

// appManifest is the application manifest: run as the invoking user (no
// elevation prompt, no installer-detection heuristics), paths longer than
// 260 characters (deep modpack folders), and UTF-8 as the process's ANSI
// code page (so any byte-string API sees player names and world names
// intact). Windows 10 is the oldest Windows Go supports.
const appManifest = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<assembly xmlns="urn:schemas-microsoft-com:asm.v1" manifestVersion="1.0">
  <assemblyIdentity type="win32" name="Timemachine.{{name}}" version="{{version}}" processorArchitecture="{{arch}}"/>
  <description>{{name}}</description>
  <trustInfo xmlns="urn:schemas-microsoft-com:asm.v3">
    <security>
      <requestedPrivileges>
        <requestedExecutionLevel level="asInvoker" uiAccess="false"/>
      </requestedPrivileges>
    </security>
  </trustInfo>
  <compatibility xmlns="urn:schemas-microsoft-com:compatibility.v1">
    <application>
      <supportedOS Id="{8e0f7a12-bfb3-4fe8-b9a5-48fd50a15a9a}"/>
    </application>
  </compatibility>
  <application xmlns="urn:schemas-microsoft-com:asm.v3">
    <windowsSettings>
      <longPathAware xmlns="http://schemas.microsoft.com/SMI/2016/WindowsSettings">true</longPathAware>
      <activeCodePage xmlns="http://schemas.microsoft.com/SMI/2019/WindowsSettings">UTF-8</activeCodePage>
    </windowsSettings>
  </application>
</assembly>
`

// fourPart turns a version such as v1.2.3-4-gabcdef into 1.2.3.0, the
// numeric form Windows' fixed version fields and manifests need; anything
// that does not start like a version (a bare commit hash, "dev") becomes
// 0.0.0.0.
func fourPart(v string) string {
	m := versionPrefix.FindStringSubmatch(v)
	var n [4]int
	for i := range n {
		if m == nil || m[i+1] == "" {
			continue
		}
		n[i], _ = strconv.Atoi(m[i+1])
		if n[i] > 65535 {
			return "0.0.0.0"
		}
	}
	return fmt.Sprintf("%d.%d.%d.%d", n[0], n[1], n[2], n[3])
}

var versionPrefix = regexp.MustCompile(`^v?(\d{1,5})(?:\.(\d{1,5}))?(?:\.(\d{1,5}))?(?:\.(\d{1,5}))?(?:[-+.]|$)`)

// resources is the resource set of one Windows build of cmd.
func resources(cmd, arch, ver string) (*winres.ResourceSet, error) {
	var vi version.Info
	var fixed [4]uint16
	fmt.Sscanf(fourPart(ver), "%d.%d.%d.%d", &fixed[0], &fixed[1], &fixed[2], &fixed[3])
	vi.FileVersion, vi.ProductVersion = fixed, fixed
	for k, v := range map[string]string{
		version.ProductName:      productName,
		version.FileDescription:  descriptions[cmd],
		version.CompanyName:      company,
		version.LegalCopyright:   copyright,
		version.InternalName:     cmd,
		version.OriginalFilename: cmd + ".exe",
		// The strings carry the version exactly as "instance-sync version"
		// prints it; the fixed fields above only hold four numbers.
		version.FileVersion:    ver,
		version.ProductVersion: ver,
	} {
		if err := vi.Set(version.LangDefault, k, v); err != nil {
			return nil, fmt.Errorf("version resource %s: %w", k, err)
		}
	}
	rs := &winres.ResourceSet{}
	rs.SetVersionInfo(vi)
	manifest := strings.NewReplacer("{{name}}", cmd, "{{version}}", fourPart(ver), "{{arch}}", arch).Replace(appManifest)
	if err := rs.Set(winres.RT_MANIFEST, winres.ID(1), winres.LCIDDefault, []byte(manifest)); err != nil {
		return nil, fmt.Errorf("manifest resource: %w", err)
	}
	return rs, nil
}

// writeSyso writes the resources of t as a COFF object the Go linker
// embeds in the executable.
func writeSyso(path string, t target, ver string) error {
	rs, err := resources(t.cmd, t.goarch, ver)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := rs.WriteObject(&b, winres.Arch(t.goarch)); err != nil {
		return fmt.Errorf("resources for %s: %w", t.platform(), err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
