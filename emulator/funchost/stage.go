package funchost

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// StageOptions say what Stage puts in the staged app.
type StageOptions struct {
	// Handler is a built handler binary to link or copy in; "" builds root's ./handler package
	// with the go command.
	Handler string
	// GOOS and GOARCH are the platform to build for; "" is this machine's.
	GOOS, GOARCH string
	// Release builds the handler as it ships: static (CGO_ENABLED=0), -trimpath, stripped.
	Release bool
	// BuildOutput receives the go command's output; nil discards it.
	BuildOutput io.Writer
}

// Stage assembles a deployable custom-handler app in dist from the repository at root: host.json
// at the top, one folder per function holding its function.json (the host finds functions only
// there, never under functions/), and the handler binary. It is the one way dist/ is made: by
// `make package` (through `azemu stage`), by `azemu run`'s tests and by the end-to-end harness.
//
// dist is replaced. To keep a mistyped path from deleting something else, Stage refuses a
// directory that is neither empty nor a staged app (one with host.json).
func Stage(ctx context.Context, root, dist string, opts *StageOptions) error {
	if opts == nil {
		opts = &StageOptions{}
	}
	fns, err := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	if err != nil {
		return err
	}
	if len(fns) == 0 {
		return fmt.Errorf("stage: no functions/*/function.json in %s", root)
	}
	if err := clearDist(dist); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(root, "host.json"), filepath.Join(dist, "host.json"), 0o644); err != nil {
		return err
	}
	for _, fn := range fns {
		name := filepath.Base(filepath.Dir(fn))
		if err := copyFile(fn, filepath.Join(dist, name, "function.json"), 0o644); err != nil {
			return err
		}
	}
	handler := filepath.Join(dist, "handler")
	if opts.Handler != "" {
		// A link costs nothing, and tests stage one handler into many apps.
		if err := os.Link(opts.Handler, handler); err == nil {
			return nil
		}
		return copyFile(opts.Handler, handler, 0o755)
	}
	abs, err := filepath.Abs(handler)
	if err != nil {
		return err
	}
	args := []string{"build", "-o", abs}
	if opts.Release {
		args = append(args, "-trimpath", "-ldflags=-s -w")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./handler")...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if opts.GOOS != "" {
		cmd.Env = append(cmd.Env, "GOOS="+opts.GOOS)
	}
	if opts.GOARCH != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+opts.GOARCH)
	}
	if opts.Release {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	out := opts.BuildOutput
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("stage: go build ./handler: %w", err)
	}
	return nil
}

func clearDist(dist string) error {
	entries, err := os.ReadDir(dist)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dist, "host.json")); err != nil {
			return fmt.Errorf("stage: %s is not empty and holds no host.json; refusing to replace it", dist)
		}
		if err := os.RemoveAll(dist); err != nil {
			return err
		}
	}
	return os.MkdirAll(dist, 0o755)
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Zip writes the staged app in dist to the zip file out, the package Flex Consumption's
// One Deploy endpoint takes. Every entry carries its Unix mode, and the handler is stored as
// 0755 whatever the local umask left on it: the Linux host executes the handler straight from
// the package, and a zip without modes (Windows tools, azd before 1.26) yields a host that
// never starts. A handler that is not a Linux (ELF) executable is refused, because Azure would
// only say the worker failed to start.
func Zip(dist, out string) error {
	handler := filepath.Join(dist, "handler")
	magic := make([]byte, 4)
	f, err := os.Open(handler)
	if err != nil {
		return fmt.Errorf("zip: %w; stage the app first ('make package')", err)
	}
	_, err = io.ReadFull(f, magic)
	f.Close()
	if err != nil || string(magic) != "\x7fELF" {
		return fmt.Errorf("zip: %s is not a Linux (ELF) executable; 'make package' builds it for linux/amd64", handler)
	}
	if _, err := os.Stat(filepath.Join(dist, "host.json")); err != nil {
		return fmt.Errorf("zip: %w; stage the app first ('make package')", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".zip-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	zw := zip.NewWriter(tmp)
	err = filepath.WalkDir(dist, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dist, path)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if rel == "handler" {
			mode = 0o755
		}
		// A fixed timestamp: the same staged app always gives the same package bytes.
		hdr := &zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Deflate, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)}
		hdr.SetMode(mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(w, in)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	return os.Rename(tmp.Name(), out)
}
