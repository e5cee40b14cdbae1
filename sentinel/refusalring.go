package sentinel

import (
	"sync"
	"time"
	"unicode/utf8"
)

// recentRefusals is how many refusals the status page remembers (GET /admin/).
const recentRefusals = 64

// maxRefusalField bounds each string a refusal entry keeps: system ids and addresses are chosen
// by the peer (a URL's system id is not yet validated at the upgrade), and the ring must stay a
// few tens of kilobytes whatever they send.
const maxRefusalField = 200

// refusalEntry is one remembered refusal. Count > 1 when the same peer was refused for the
// same code and reason several times in a row (a flood is one line, not the whole ring).
type refusalEntry struct {
	Time   time.Time `json:"time"`
	Peer   string    `json:"peer"`             // system id, else the id from the URL, else ""
	Remote string    `json:"remote"`           // address:port
	Target string    `json:"target,omitempty"` // what the refused envelope was for (a queue's peer), if any
	Code   string    `json:"code"`             // the counter's reason label (fame_*_refusals_total)
	Reason string    `json:"reason"`
	Count  uint64    `json:"count"`
}

// refusalRing keeps the last recentRefusals refusals for the status page. It is fed where the
// refusal counters are incremented, so it is on the refusal path, never on the forwarding
// path: one short critical section that copies string headers into a fixed array (no
// allocation), and a repeat of the newest entry only bumps its count. A nil ring records
// nothing (components built without one in unit tests).
type refusalRing struct {
	mu    sync.Mutex
	buf   [recentRefusals]refusalEntry
	next  int    // slot the next entry goes to
	n     int    // entries held, at most len(buf)
	total uint64 // refusals recorded since start, repeats included
}

// add records a refusal. code is the counter's label, reason the human text.
func (r *refusalRing) add(code, peer, remote, reason string) { r.addTo(code, peer, remote, "", reason) }

// addTo is add with the refused envelope's target.
func (r *refusalRing) addTo(code, peer, remote, target, reason string) {
	if r == nil {
		return
	}
	now := time.Now()
	peer, remote, target, reason = clip(peer), clip(remote), clip(target), clip(reason)
	r.mu.Lock()
	r.total++
	if r.n > 0 {
		last := &r.buf[(r.next+len(r.buf)-1)%len(r.buf)]
		if last.Code == code && last.Peer == peer && last.Remote == remote && last.Target == target && last.Reason == reason {
			last.Count++
			last.Time = now
			r.mu.Unlock()
			return
		}
	}
	r.buf[r.next] = refusalEntry{Time: now, Peer: peer, Remote: remote, Target: target, Code: code, Reason: reason, Count: 1}
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
	r.mu.Unlock()
}

// snapshot returns the held refusals, newest first, and the total recorded since start.
func (r *refusalRing) snapshot() ([]refusalEntry, uint64) {
	if r == nil {
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]refusalEntry, r.n)
	for i := range out {
		out[i] = r.buf[(r.next+len(r.buf)-1-i)%len(r.buf)]
	}
	return out, r.total
}

// clip shortens s to at most maxRefusalField bytes on a rune boundary, with "…" when cut. The
// cut shares s's memory; only a cut string allocates (for the ellipsis).
func clip(s string) string {
	if len(s) <= maxRefusalField {
		return s
	}
	i := maxRefusalField
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// senderID and senderRemote name the sender of a refused envelope; nil for the sentinel's own.
func senderID(src *conn) string {
	if src == nil {
		return ""
	}
	return src.systemID
}

func senderRemote(src *conn) string {
	if src == nil {
		return ""
	}
	return src.remote
}
