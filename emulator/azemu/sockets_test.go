package azemu

import (
	"bufio"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestListensOnlyWherePublished: azemu opens exactly the sockets endpoints.json names (the HTTPS
// origin, the managed-identity endpoint, Service Bus) and no listener of an emulator's own.
func TestListensOnlyWherePublished(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the process's sockets from /proc")
	}
	before := listeningPorts(t)
	s := start(t)
	var opened []int
	for _, p := range listeningPorts(t) {
		if !slices.Contains(before, p) {
			opened = append(opened, p)
		}
	}
	slices.Sort(opened)

	ep := s.Endpoints()
	var published []int
	for _, u := range []string{ep.AuthorityHost, ep.GraphBaseURL, ep.KeyVaultURL, ep.ManagedIdentity.Endpoint} {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		published = append(published, port(t, pu.Host))
	}
	sb := ep.ServiceBusConnectionString
	host, _, _ := strings.Cut(strings.TrimPrefix(sb[strings.Index(sb, "Endpoint=sb://"):], "Endpoint=sb://"), ";")
	published = append(published, port(t, host))
	slices.Sort(published)
	published = slices.Compact(published)

	if len(published) != 3 {
		t.Errorf("endpoints.json names %d ports, want 3 (origin, managed identity, AMQP): %v", len(published), published)
	}
	if !slices.Equal(opened, published) {
		t.Errorf("azemu listens on ports %v; endpoints.json names %v", opened, published)
	}
}

func port(tb testing.TB, hostport string) int {
	tb.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// listeningPorts are the TCP ports this process listens on: the LISTEN entries of
// /proc/self/net/tcp{,6} whose socket inode is one of the process's open files.
func listeningPorts(tb testing.TB) []int {
	tb.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if inode, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
			mine[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(table)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !mine[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil {
				tb.Fatal(err)
			}
			ports = append(ports, int(p))
		}
		f.Close()
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}
