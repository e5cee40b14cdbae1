package ceiling

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// RunEcho attaches the echo agent at relayURL (the relay's base, e.g. ws://127.0.0.1:9000)
// and answers every request until ctx ends or the connection closes. It returns nil when ctx
// ended the run.
func RunEcho(ctx context.Context, relayURL string, cfg Config) error {
	ws, snd, err := cfg.dialSender(ctx, strings.TrimSuffix(relayURL, "/")+"/agent")
	if err != nil {
		return fmt.Errorf("ceiling echo: dial: %w", err)
	}
	defer snd.close()
	out := make([]byte, 0, 512)
	err = pump(ctx, ws, func(_ []byte, m map[string]any) error {
		var ok bool
		out, ok = appendReply(out[:0], m)
		if !ok {
			return fmt.Errorf("%w: request without string corrId, traceId and replyTo", ErrBadEnvelope)
		}
		return snd.send(ctx, out, false)
	})
	if ctx.Err() != nil {
		ws.CloseNow()
		return nil
	}
	closeFor(ws, err, cfg.log(), "echo", relayURL)
	return fmt.Errorf("ceiling echo: %w", err)
}

// appendReply writes the reply a math agent sends to add(3, 4): a FAME reply envelope to the
// request's replyTo with its corrId and traceId.
func appendReply(dst []byte, req map[string]any) ([]byte, bool) {
	corr, ok1 := req["corrId"].(string)
	trace, ok2 := req["traceId"].(string)
	to, ok3 := req["replyTo"].(string)
	if !ok1 || !ok2 || !ok3 {
		return dst, false
	}
	dst = append(dst, `{"version":"1.0","id":`...)
	dst = appendString(dst, corr+"r") // one small allocation; a real agent makes a fresh id too
	dst = append(dst, `,"sid":"5VEej3l5KWoUd4lYoDZq3d","traceId":`...)
	dst = appendString(dst, trace)
	dst = append(dst, `,"to":`...)
	dst = appendString(dst, to)
	dst = append(dst, `,"replyTo":"__sys__@/relay/echo","corrId":`...)
	dst = appendString(dst, corr)
	dst = append(dst, `,"flowId":"7YxVJrp3seoB6oSE","seqId":3,"flowFlags":0,"frame":{"type":"Data","payload":{"jsonrpc":"2.0","id":`...)
	dst = appendString(dst, corr)
	dst = append(dst, `,"result":7}},"ts":"2026-11-23T03:40:53.035Z"}`...)
	return dst, true
}

// appendString appends s as a JSON string. Request fields come from the peer, so everything
// JSON requires is escaped (invalid UTF-8 becomes U+FFFD).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		dst = utf8.AppendRune(dst, r) // RuneError for invalid bytes
		i += size
	}
	return append(dst, '"')
}
