package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func markerFile(l Launcher) string {
	switch l {
	case Prism:
		return "prismlauncher.cfg"
	case MultiMC:
		return "multimc.cfg"
	default:
		return filepath.Join("configs", "ATLauncher.json")
	}
}

func displayName(l Launcher) string {
	switch l {
	case Prism:
		return "Prism Launcher"
	case MultiMC:
		return "MultiMC"
	default:
		return "ATLauncher"
	}
}

func (o Options) globalFile() (string, error) {
	dir, err := o.dataDir()
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, markerFile(o.Launcher))
	if !exists(f) {
		return "", fmt.Errorf("%s not found; start %s once so it creates it, or pass the right --launcher-dir", f, displayName(o.Launcher))
	}
	return f, nil
}

func (o Options) instanceFile() (string, error) {
	name := "instance.cfg"
	if o.Launcher == ATLauncher {
		name = "instance.json"
	}
	p := o.Instance
	for _, dir := range []string{p, filepath.Dir(p)} {
		if f := filepath.Join(dir, name); exists(f) {
			return f, nil
		}
	}
	// A bare name is looked up in the launcher's instances folder.
	if !strings.ContainsAny(p, `/\`) {
		if dir, err := o.dataDir(); err == nil {
			f := filepath.Join(o.instancesDir(dir), p, name)
			if exists(f) {
				return f, nil
			}
		}
	}
	return "", fmt.Errorf("no %s in %s; pass --instance=PATH with the instance folder (the one holding %s)", name, p, name)
}

// instancesDir honours Prism/MultiMC's InstanceDir setting, which players
// move to another drive.
func (o Options) instancesDir(dataDir string) string {
	if o.Launcher != ATLauncher {
		if b, err := os.ReadFile(filepath.Join(dataDir, markerFile(o.Launcher))); err == nil {
			if v, ok, err := parseINI(b, o.Launcher == Prism).get("InstanceDir"); err == nil && ok && v != "" {
				if filepath.IsAbs(v) {
					return v
				}
				return filepath.Join(dataDir, v)
			}
		}
	}
	return filepath.Join(dataDir, "instances")
}

// DataDirCandidates lists where a launcher keeps its data on o.GOOS, in the
// order they are tried.
func DataDirCandidates(o Options) []string {
	o, _ = o.withDefaults()
	join := func(elem ...string) string {
		if o.GOOS == "windows" {
			for i := range elem {
				elem[i] = strings.TrimRight(elem[i], `\/`)
			}
			return strings.Join(elem, `\`)
		}
		return filepath.ToSlash(filepath.Join(elem...))
	}
	home := o.Home
	appData := o.Getenv("APPDATA")
	if appData == "" && o.GOOS == "windows" {
		appData = join(home, "AppData", "Roaming")
	}
	xdg := o.Getenv("XDG_DATA_HOME")
	if xdg == "" {
		xdg = join(home, ".local", "share")
	}
	macSupport := join(home, "Library", "Application Support")
	switch o.Launcher {
	case Prism:
		switch o.GOOS {
		case "windows":
			return []string{join(appData, "PrismLauncher")}
		case "darwin":
			return []string{join(macSupport, "PrismLauncher")}
		default:
			return []string{
				join(xdg, "PrismLauncher"),
				join(home, ".var", "app", "org.prismlauncher.PrismLauncher", "data", "PrismLauncher"),
			}
		}
	case MultiMC:
		// MultiMC is portable: its data sits beside MultiMC.exe on Windows,
		// so there is nothing to guess there.
		switch o.GOOS {
		case "windows":
			return nil
		case "darwin":
			return []string{join(macSupport, "MultiMC")}
		default:
			return []string{join(xdg, "multimc")} // where MultiMC's Linux start script puts it
		}
	default:
		switch o.GOOS {
		case "windows":
			return []string{join(appData, "ATLauncher")}
		case "darwin":
			return []string{join(macSupport, "ATLauncher")}
		default:
			return []string{
				join(xdg, "ATLauncher"),
				join(xdg, "atlauncher"),
				join(home, ".atlauncher"),
				join(home, ".var", "app", "com.atlauncher.ATLauncher", "data", "ATLauncher"),
			}
		}
	}
}

func (o Options) dataDir() (string, error) {
	if o.LauncherDir != "" {
		return o.LauncherDir, nil
	}
	cands := DataDirCandidates(o)
	for _, c := range cands {
		if exists(filepath.Join(c, markerFile(o.Launcher))) {
			return c, nil
		}
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("%s keeps its settings beside its program; pass --launcher-dir=DIR with the folder that holds %s", displayName(o.Launcher), markerFile(o.Launcher))
	}
	return "", fmt.Errorf("no %s data folder found (looked in %s); pass --launcher-dir=DIR", displayName(o.Launcher), strings.Join(cands, ", "))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// overridingInstances names the instances whose own command settings replace
// the launcher-wide ones: a global install silently does not reach them, and
// the player would wonder why those instances never sync.
func (o Options) overridingInstances(globalFile string) []string {
	dataDir := filepath.Dir(globalFile)
	name := "instance.cfg"
	if o.Launcher == ATLauncher {
		dataDir = filepath.Dir(dataDir) // configs/ATLauncher.json
		name = "instance.json"
	}
	instDir := o.instancesDir(dataDir)
	ents, err := os.ReadDir(instDir)
	if err != nil {
		return nil
	}
	var notes []string
	for _, e := range ents {
		dir := filepath.Join(instDir, e.Name())
		if !e.IsDir() || !exists(filepath.Join(dir, name)) {
			continue
		}
		io := o
		io.Global, io.Instance = false, dir
		t, err := io.resolve()
		if err != nil {
			continue
		}
		c, _, _, err := t.load()
		if err != nil {
			continue
		}
		overrides := t.flagOn(c)
		if o.Launcher == ATLauncher {
			// ATLauncher falls back to the global value field by field.
			r, ok := c.raw(t.flagKey)
			overrides = ok && strings.TrimSpace(r) == "false"
			for _, k := range t.keys {
				if r, ok := c.raw(k); ok && r != "null" {
					overrides = true
				}
			}
		}
		if !overrides {
			continue
		}
		if st, err := t.status(c); err == nil && !st.Installed {
			notes = append(notes, fmt.Sprintf("instance %q sets its own custom commands, so the global ones do not run for it; also run: instance-sync hooks install --launcher=%s --instance=\"%s\"", e.Name(), o.Launcher, dir))
		}
	}
	return notes
}

// flatpakNote warns that the Flatpak build of Prism runs commands inside its
// sandbox, where a binary in the player's home folder is invisible.
func (o Options) flatpakNote(file string) string {
	const app = "org.prismlauncher.PrismLauncher"
	sandbox := filepath.Join(o.Home, ".var", "app", app)
	if o.Launcher != Prism || !strings.HasPrefix(file, sandbox+string(filepath.Separator)) || strings.HasPrefix(o.Binary, sandbox+"/") {
		return ""
	}
	return fmt.Sprintf("this Prism Launcher is a Flatpak: let it run instance-sync with \"flatpak override --user --filesystem=%s:ro %s\"", filepath.Dir(o.Binary), app)
}

func isAbsFor(goos, p string) bool {
	if goos == "windows" {
		return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') || strings.HasPrefix(p, `\\`)
	}
	return strings.HasPrefix(p, "/")
}
