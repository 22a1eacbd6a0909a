package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.00 kB", 12345: "12.3 kB",
		999_499: "999 kB", 253_000_000: "253 MB", 1_500_000_000: "1.50 GB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := networkLabel("scan x", 12345); got != "scan x, 12.3 kB over the network" {
		t.Errorf("networkLabel = %q", got)
	}
}

// inspectTransfer inspects a served file and returns the bytes it says it
// read over the network.
func inspectTransfer(t *testing.T, url string) int64 {
	t.Helper()
	r := remoteRun(t, "inspect", "--json", url)
	r.wantCode(t, 0)
	var rep struct{ Network *networkUse }
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Network == nil || rep.Network.Bytes <= 0 {
		t.Fatalf("no network use in the JSON (%v):\n%.500s", err, r.stdout)
	}
	return rep.Network.Bytes
}

// The bar of a remote read says the bytes received over the network since
// it was made; a local one does not speak of the network.
func TestProgressSaysNetworkBytes(t *testing.T) {
	srv := serve(t, &fileServer{root: remoteFixtures(t)})
	url := srv.URL + "/big/model.safetensors"
	var remote, local strings.Builder
	bar := drawnProgress(&remote, 1000, "scan x").countNetwork(true)
	plain := drawnProgress(&local, 1000, "scan y").countNetwork(false)
	n := inspectTransfer(t, url)
	time.Sleep(progressThrottle + 10*time.Millisecond)
	bar.Add(500)
	plain.Add(500)
	if want := networkLabel("scan x", n); !strings.Contains(remote.String(), want) {
		t.Errorf("the bar does not say %q:\n%q", want, remote.String())
	}
	if !strings.Contains(remote.String(), networkLabel("scan x", 0)) {
		t.Errorf("the bar did not start at 0 bytes over the network:\n%q", remote.String())
	}
	if strings.Contains(local.String(), "network") || !strings.Contains(local.String(), "scan y") {
		t.Errorf("a local bar: %q", local.String())
	}
	bar.Done()
	plain.Done()
	// bisect prints lines instead of a bar: each says the traffic so far.
	var lines strings.Builder
	log := bisectLog(&lines, true)
	log("scanning %s", "a")
	m := inspectTransfer(t, url)
	log("scanning %s", "b")
	want := "ckpt bisect: scanning a, 0 B over the network so far\n" +
		"ckpt bisect: " + networkLabel("scanning b", m) + " so far\n"
	if lines.String() != want {
		t.Errorf("bisect's lines:\n%s\nwant:\n%s", lines.String(), want)
	}
	lines.Reset()
	bisectLog(&lines, false)("scanning %s", "c")
	if lines.String() != "ckpt bisect: scanning c\n" {
		t.Errorf("a local bisect's line: %q", lines.String())
	}
}
