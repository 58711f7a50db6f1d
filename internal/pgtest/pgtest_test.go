package pgtest

import (
	"os"
	"strings"
	"testing"
)

// TestStartLogsAudit: a cluster with pgaudit preloaded writes pgaudit's
// records to its jsonlog, over the socket and over TCP with a password.
func TestStartLogsAudit(t *testing.T) {
	in := Require(t, 15, "pgaudit")
	c := Start(t, in, t.TempDir(), Options{Settings: []string{
		"shared_preload_libraries = 'pgaudit'",
		"pgaudit.log = 'read'",
		"logging_collector = on",
		"log_destination = 'jsonlog'",
	}})
	su := Conn{User: Superuser, App: "pgtest"}
	c.MustRun(t, su, "CREATE ROLE reader LOGIN PASSWORD 'pw'; CREATE TABLE t (x int); GRANT SELECT ON t TO reader;")
	if got := c.MustRun(t, Conn{User: "reader", Password: "pw", App: "pgtest", TCP: true}, "SELECT count(*) FROM t;"); strings.TrimSpace(got) != "0" {
		t.Fatalf("count over TCP: %q", got)
	}
	if _, err := c.Run(Conn{User: "reader", Password: "wrong", TCP: true}, "SELECT 1"); err == nil {
		t.Fatal("a wrong password was accepted over TCP")
	}
	c.WaitLog(t, "jsonlog", `"message":"AUDIT: SESSION,1,1,READ,SELECT`, 1)
	c.Stop(t)
	b, err := os.ReadFile(c.LogFile("jsonlog"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"user":"reader"`, `"remote_host":"127.0.0.1"`, `"application_name":"pgtest"`, `"state_code":"28P01"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("jsonlog lacks %s", want)
		}
	}
}
