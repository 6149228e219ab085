// mkimage builds burstlet's OCI image offline, from nothing but this machine's files: no base
// image is pulled. The image holds the release binary at /usr/bin/burstlet, the shared
// libraries it loads (as ldd lists them, the dynamic loader included), the CA certificates, and
// /etc/passwd and /etc/group with the non-root user burstlet (65532) it runs as.
//
//	mkimage build --binary build/release/src/cmd/burstlet/burstlet --version 0.1.0 \
//	    --layout build/image/oci --tarball build/image/burstlet.tar
//	mkimage extract --layout build/image/oci --to /tmp/rootfs
//
// build writes an OCI image layout (a directory; `skopeo`/`crane`/`ctr` read it) and a tarball
// `docker load`/`podman load` take; the layer's files carry a fixed time, so the same inputs
// give the same image digest. extract unpacks the image's root filesystem (the e2e test runs
// burstlet from it in a chroot).
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user the image runs as (distroless's "nonroot" number).
const uid = 65532

// Files in the layer carry this time: the same inputs make the same digest.
var epoch = time.Unix(0, 0).UTC()

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mkimage build|extract [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2:])
	case "extract":
		err = extract(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (build, extract)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func build(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	binary := fs.String("binary", "", "the burstlet binary (release build)")
	version := fs.String("version", "dev", "image version (tag and label)")
	repo := fs.String("repository", "burstlet", "repository name of the tag")
	layoutDir := fs.String("layout", "", "OCI image layout directory to write (replaced)")
	tarPath := fs.String("tarball", "", "image tarball for docker/podman load (optional)")
	caFile := fs.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include")
	_ = fs.Parse(args)
	if *binary == "" || *layoutDir == "" {
		return errors.New("build needs --binary and --layout")
	}
	libs, err := sharedLibraries(*binary)
	if err != nil {
		return err
	}
	// The release build carries debug information (RelWithDebInfo): the image gets it stripped.
	stripped := filepath.Join(os.TempDir(), fmt.Sprintf("mkimage-%d-burstlet", os.Getpid()))
	if out, err := exec.Command("strip", "--strip-debug", "-o", stripped, *binary).CombinedOutput(); err != nil {
		return fmt.Errorf("strip %s: %v: %s", *binary, err, out)
	}
	defer os.Remove(stripped)
	layer, err := rootfsLayer(stripped, libs, *caFile)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint: []string{"/usr/bin/burstlet"},
		Cmd:        []string{"run", "--in-cluster", "--config", "/etc/burstlet/config.yaml"},
		Env:        []string{"PATH=/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.title":   "burstlet",
			"org.opencontainers.image.version": *version,
		},
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	tag, err := name.NewTag(*repo + ":" + *version)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(*layoutDir); err != nil {
		return err
	}
	p, err := layout.Write(*layoutDir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.String(),
	})); err != nil {
		return err
	}
	if *tarPath != "" {
		if err := os.MkdirAll(filepath.Dir(*tarPath), 0o755); err != nil {
			return err
		}
		if err := tarball.WriteToFile(*tarPath, tag, img); err != nil {
			return err
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s: %d shared libraries, layout %s\n", tag, digest, len(libs), *layoutDir)
	return nil
}

// ldd's lines: "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)" and
// "/lib64/ld-linux-x86-64.so.2 (0x...)"; "linux-vdso.so.1 (0x...)" is the kernel's.
var lddPath = regexp.MustCompile(`(?:=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)`)

// sharedLibraries lists what the dynamic loader maps for binary, the loader itself included, by
// the paths the binary and the loader ask for.
func sharedLibraries(binary string) ([]string, error) {
	out, err := exec.Command("ldd", binary).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v: %s", binary, err, out)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd %s: %s", binary, strings.TrimSpace(line))
		}
		if m := lddPath.FindStringSubmatch(line); m != nil {
			libs = append(libs, m[1])
		}
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s listed no libraries (a static binary needs no image tool)", binary)
	}
	sort.Strings(libs)
	return libs, nil
}

type entry struct {
	path string // in the image, absolute
	mode int64
	dir  bool
	uid  int
	data []byte
}

// rootfsLayer is the image's one layer: directories, the binary, its libraries (file contents at
// the paths the loader asks for, symlinks resolved), CA certificates, passwd and group.
func rootfsLayer(binary string, libs []string, caFile string) (v1.Layer, error) {
	var files []entry
	add := func(path string, mode int64, src string) error {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		files = append(files, entry{path: path, mode: mode, data: data})
		return nil
	}
	if err := add("/usr/bin/burstlet", 0o755, binary); err != nil {
		return nil, err
	}
	for _, l := range libs {
		if err := add(l, 0o755, l); err != nil {
			return nil, err
		}
	}
	if err := add("/etc/ssl/certs/ca-certificates.crt", 0o644, caFile); err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	files = append(files,
		entry{path: "/etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\nburstlet:x:%d:%d:burstlet:/home/burstlet:/sbin/nologin\n", uid, uid))},
		entry{path: "/etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nburstlet:x:%d:\n", uid))},
		entry{path: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		entry{path: "/tmp", mode: 0o1777, dir: true},
		entry{path: "/home/burstlet", mode: 0o700, dir: true, uid: uid},
		entry{path: "/etc/burstlet", mode: 0o755, dir: true},
	)
	// Every parent directory, once, before what it holds.
	dirs := map[string]bool{}
	for _, f := range files {
		if f.dir {
			dirs[f.path] = true
		}
	}
	var parents []entry
	for _, f := range files {
		for d := filepath.Dir(f.path); d != "/" && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			parents = append(parents, entry{path: d, mode: 0o755, dir: true})
		}
	}
	all := append(parents, files...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].path < all[j].path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range all {
		h := &tar.Header{Name: strings.TrimPrefix(f.path, "/"), Mode: f.mode, ModTime: epoch,
			Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if !f.dir {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

func extract(args []string) error {
	fs := flag.NewFlagSet("extract", flag.ExitOnError)
	layoutDir := fs.String("layout", "", "OCI image layout directory")
	to := fs.String("to", "", "directory to unpack the root filesystem into")
	_ = fs.Parse(args)
	if *layoutDir == "" || *to == "" {
		return errors.New("extract needs --layout and --to")
	}
	p, err := layout.FromPath(*layoutDir)
	if err != nil {
		return err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(m.Manifests) != 1 {
		return fmt.Errorf("%s holds %d images, want 1", *layoutDir, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(*to, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, os.FileMode(h.Mode).Perm()|os.ModeDir); err != nil {
				return err
			}
			if err := os.Chmod(target, os.FileMode(h.Mode)&os.ModePerm|modeBits(h.Mode)); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: entry type %c not expected in burstlet's image", h.Name, h.Typeflag)
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
			return err
		}
	}
}

// modeBits keeps the sticky bit (/tmp) that os.FileMode(perm) drops.
func modeBits(mode int64) os.FileMode {
	if mode&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
