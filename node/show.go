package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fame-go/fame/envelope"
)

// show prints one envelope for humans (FAME_SHOW_ENVELOPES=true): a blank line, the time,
// the direction label, then the envelope as 2-space indented JSON, as the reference does.
func (n *Node) show(label string, raw []byte) {
	if !n.cfg.ShowEnvelopes {
		return
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "\n%s - %s\n", envelope.FormatTime(time.Now()), label)
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		out.Write(raw)
	}
	out.WriteByte('\n')
	n.showMu.Lock()
	defer n.showMu.Unlock()
	_, _ = n.cfg.ShowWriter.Write(out.Bytes())
}
