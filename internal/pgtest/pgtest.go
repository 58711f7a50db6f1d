// Package pgtest starts a throwaway PostgreSQL cluster (initdb, pg_ctl) for
// tests that must see what a real server logs, with pgaudit loaded when
// asked: a decoder tested only against hand-written samples is tested
// against our idea of the format, not the format.
//
// PostgreSQL refuses to run as root, and tests here often do (containers,
// CI): the server then runs as nobody, with the cluster's directories
// handed to it.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Superuser is the bootstrap superuser initdb creates.
const Superuser = "postgres"

// Install is a PostgreSQL installation: its binaries and extension
// libraries.
type Install struct {
	Bin     string // directory of initdb, pg_ctl, postgres
	PkgLib  string // directory of extension libraries (pgaudit.so)
	Psql    string // the psql client
	Version int    // major version
}

// Find locates a PostgreSQL installation: $EXFILGUARD_PG_BIN, else the
// newest /usr/lib/postgresql/N/bin (Debian, Ubuntu), else the pg_config on
// PATH.
func Find() (*Install, error) {
	var bins []string
	if b := os.Getenv("EXFILGUARD_PG_BIN"); b != "" {
		bins = append(bins, b)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	bins = append(bins, dirs...)
	if pc, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pc, "--bindir").Output(); err == nil {
			bins = append(bins, strings.TrimSpace(string(out)))
		}
	}
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
			continue
		}
		in := &Install{Bin: bin}
		out, err := exec.Command(filepath.Join(bin, "pg_config"), "--pkglibdir").Output()
		if err != nil {
			return nil, fmt.Errorf("find postgresql: pg_config --pkglibdir in %s: %w", bin, err)
		}
		in.PkgLib = strings.TrimSpace(string(out))
		out, err = exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
		if err != nil {
			return nil, fmt.Errorf("find postgresql: postgres --version in %s: %w", bin, err)
		}
		// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
		if f := strings.Fields(string(out)); len(f) >= 3 {
			in.Version, _ = strconv.Atoi(strings.SplitN(f[2], ".", 2)[0])
		}
		in.Psql = filepath.Join(bin, "psql")
		if _, err := os.Stat(in.Psql); err != nil {
			if in.Psql, err = exec.LookPath("psql"); err != nil {
				return nil, errors.New("find postgresql: no psql client")
			}
		}
		return in, nil
	}
	return nil, errors.New("find postgresql: no server binaries (apt-get install postgresql-15)")
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Require returns the installation when it has at least PostgreSQL
// minVersion and every named extension library (e.g. "pgaudit"). When
// something is missing the test is skipped with what to install, or, under
// EXFILGUARD_CI (whose runner installs them), fails.
func Require(t testing.TB, minVersion int, extensions ...string) *Install {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("EXFILGUARD_CI") != "" {
			t.Fatalf("%s; .ci/run installs it", msg)
		}
		t.Skip(msg)
	}
	in, err := Find()
	if err != nil {
		missing("%v", err)
		return nil
	}
	if in.Version < minVersion {
		missing("PostgreSQL %d found in %s, need %d or later (apt-get install postgresql-%d)", in.Version, in.Bin, minVersion, minVersion)
		return nil
	}
	for _, ext := range extensions {
		if _, err := os.Stat(filepath.Join(in.PkgLib, ext+".so")); err != nil {
			missing("PostgreSQL extension %s not installed in %s (apt-get install postgresql-%d-%s)", ext, in.PkgLib, in.Version, ext)
			return nil
		}
	}
	return in
}

// Cluster is one running server.
type Cluster struct {
	Install *Install
	Dir     string // everything of the cluster lives under Dir
	DataDir string
	SockDir string // the Unix socket's directory
	LogDir  string // log_directory: postgresql.log, .csv, .json
	Port    int    // also listened on at 127.0.0.1

	cred *syscall.Credential // nil: run as ourselves
}

// Options shape a cluster.
type Options struct {
	// Settings are postgresql.conf lines appended after the cluster's own
	// (listen address, port, socket, log directory and file name), so
	// they may override those too.
	Settings []string
	// HBA replaces pg_hba.conf when not empty. The default trusts the
	// Unix socket and asks for a SCRAM password over TCP.
	HBA string
}

// Start runs initdb in dir (which should be the test's t.TempDir()) and
// starts the server; it is stopped when the test ends. Logs go to
// LogDir with the fixed file name postgresql.log (postgresql.csv and
// postgresql.json for csvlog and jsonlog), so that a shipper can follow
// them by name; rotation is off.
func Start(t testing.TB, in *Install, dir string, o Options) *Cluster {
	t.Helper()
	c := &Cluster{Install: in, Dir: dir, DataDir: filepath.Join(dir, "data"), SockDir: filepath.Join(dir, "sock"), LogDir: filepath.Join(dir, "log")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("pgtest: PostgreSQL refuses root and there is no user nobody to run it as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		if err := openPath(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{c.DataDir, c.SockDir, c.LogDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		// The socket directory must be reachable by clients that are not
		// the server's user (psql run by root, as the tests do).
		if d == c.SockDir {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if c.cred != nil {
			if err := os.Chown(d, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.Port = freePort(t)

	if out, err := c.server("initdb", "-D", c.DataDir, "-U", Superuser, "--auth-local=trust", "--auth-host=scram-sha-256",
		"--locale=C.UTF-8", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	conf := []string{
		"",
		"# pgtest",
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", c.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", c.SockDir),
		fmt.Sprintf("log_directory = '%s'", c.LogDir),
		"log_filename = 'postgresql.log'",
		"log_rotation_age = 0",
		"log_rotation_size = 0",
		"fsync = off", // a throwaway cluster: durability buys nothing
	}
	conf = append(conf, o.Settings...)
	if err := appendFile(filepath.Join(c.DataDir, "postgresql.conf"), strings.Join(conf, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	if o.HBA != "" {
		if err := os.WriteFile(filepath.Join(c.DataDir, "pg_hba.conf"), []byte(o.HBA), 0o600); err != nil {
			t.Fatal(err)
		}
		if c.cred != nil {
			if err := os.Chown(filepath.Join(c.DataDir, "pg_hba.conf"), int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Server output before the logging collector takes over (a bad
	// setting) goes to startup.log, in the socket directory because the
	// server's user can write there.
	startLog := filepath.Join(c.SockDir, "startup.log")
	if out, err := c.server("pg_ctl", "-D", c.DataDir, "-l", startLog, "-w", "-t", "120", "start").CombinedOutput(); err != nil {
		b, _ := os.ReadFile(startLog)
		t.Fatalf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, b)
	}
	t.Cleanup(func() { c.stop("immediate") })
	return c
}

// Stop shuts the server down cleanly (its shutdown is logged too).
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.stop("fast"); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) stop(mode string) error {
	if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); err != nil {
		return nil // not running
	}
	if out, err := c.server("pg_ctl", "-D", c.DataDir, "-m", mode, "-w", "-t", "120", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// PID is the postmaster's process id, for followers of its log that
// should stop when it does (tail --pid).
func (c *Cluster) PID(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("pgtest: read postmaster.pid: %v", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("pgtest: postmaster.pid: first line %q is not a pid", first)
	}
	return pid
}

// LogFile is the path of the log of one destination: "stderr",
// "csvlog" or "jsonlog".
func (c *Cluster) LogFile(destination string) string {
	switch destination {
	case "csvlog":
		return filepath.Join(c.LogDir, "postgresql.csv")
	case "jsonlog":
		return filepath.Join(c.LogDir, "postgresql.json")
	}
	return filepath.Join(c.LogDir, "postgresql.log")
}

// server is a command of the server's binaries, run as the server's user.
func (c *Cluster) server(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.Install.Bin, name), args...)
	cmd.Dir = "/" // the caller's directory may be closed to nobody
	cmd.Env = cleanEnv()
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// Conn says how a client connects.
type Conn struct {
	User     string
	Password string // needed over TCP
	App      string // application_name
	Database string // default: postgres
	// TCP connects to 127.0.0.1 (the log shows a remote address) instead
	// of the Unix socket (logged as [local]).
	TCP bool
}

// Command returns a psql command for conn, reading SQL from its stdin
// unless args say otherwise (-c, -f). ON_ERROR_STOP is set; output is
// unaligned and quiet.
func (c *Cluster) Command(conn Conn, args ...string) *exec.Cmd {
	host := c.SockDir
	if conn.TCP {
		host = "127.0.0.1"
	}
	db := conn.Database
	if db == "" {
		db = "postgres"
	}
	base := []string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", strconv.Itoa(c.Port), "-U", conn.User, "-d", db}
	cmd := exec.Command(c.Install.Psql, append(base, args...)...)
	cmd.Env = append(cleanEnv(), "PGAPPNAME="+conn.App, "PGCONNECT_TIMEOUT=30")
	if conn.Password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+conn.Password)
	}
	return cmd
}

// Run runs sql through psql as conn and returns its output; an error
// carries psql's stderr.
func (c *Cluster) Run(conn Conn, sql string) (string, error) {
	cmd := c.Command(conn)
	cmd.Stdin = strings.NewReader(sql)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("psql as %s: %w: %s", conn.User, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// MustRun is Run failing the test on error.
func (c *Cluster) MustRun(t testing.TB, conn Conn, sql string) string {
	t.Helper()
	out, err := c.Run(conn, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WaitLog waits until the log of destination holds n lines that contain
// substr: the logging collector writes asynchronously, so a statement
// psql has returned from may not be in the file yet.
func (c *Cluster) WaitLog(t testing.TB, destination, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(c.LogFile(destination))
		if bytes.Count(b, []byte(substr)) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgtest: %s never held %d lines with %q", filepath.Base(c.LogFile(destination)), n, substr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cleanEnv is our environment without the PG* variables that would point
// clients or initdb elsewhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// openPath lets others traverse (not list) dir and those of its parents
// that the test harness created closed (os.MkdirTemp makes 0700), so
// that the server's user reaches the cluster's directories.
func openPath(dir string) error {
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); d != tmp && d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 != 0 {
			continue
		}
		if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("pgtest: open %s to the server's user: %w", d, err)
		}
		if !strings.HasPrefix(d, tmp+string(filepath.Separator)) {
			break // not ours to open further up
		}
	}
	return nil
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
