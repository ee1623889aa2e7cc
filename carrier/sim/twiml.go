package sim

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sayWord is how long the simulator takes to "speak" one word of <Say>.
const sayWord = 100 * time.Millisecond

// twimlNode is any TwiML element, read generically so unknown verbs parse too.
type twimlNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr  `xml:",any,attr"`
	Text     string      `xml:",chardata"`
	Children []twimlNode `xml:",any"`
}

func (n *twimlNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func parseTwiML(b []byte) (*twimlNode, error) {
	var doc twimlNode
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("12100: document parse failure: %w", err)
	}
	if doc.XMLName.Local != "Response" {
		return nil, fmt.Errorf("12102: root element is <%s>, not <Response>", doc.XMLName.Local)
	}
	return &doc, nil
}

// execute obeys a TwiML document until its end, a <Hangup/>, or ctx ends: the caller then
// hangs up. <Connect><Stream> blocks until Switchboard closes the socket or the call ends;
// <Start><Stream> streams alongside the verbs that follow. Verbs the simulator does not
// know are noted in the report and skipped.
func (k *call) execute(ctx context.Context, doc *twimlNode) {
	var started sync.WaitGroup
	sctx, stop := context.WithCancel(ctx)
	defer func() {
		stop()
		started.Wait()
	}()
	for i := range doc.Children {
		verb := &doc.Children[i]
		if ctx.Err() != nil {
			return
		}
		switch verb.XMLName.Local {
		case "Say":
			k.c.sleep(ctx, time.Duration(len(strings.Fields(verb.Text)))*sayWord)
		case "Pause":
			n, err := strconv.Atoi(verb.attr("length"))
			if err != nil {
				n = 1
			}
			k.c.sleep(ctx, time.Duration(n)*time.Second)
		case "Hangup":
			return
		case "Connect", "Start":
			for j := range verb.Children {
				s := &verb.Children[j]
				if s.XMLName.Local != "Stream" {
					k.note(fmt.Sprintf("TwiML <%s><%s> not simulated; skipped", verb.XMLName.Local, s.XMLName.Local))
					continue
				}
				spec := twilioStream(s)
				if verb.XMLName.Local == "Connect" {
					k.stream(ctx, spec)
				} else {
					started.Go(func() { k.stream(sctx, spec) })
				}
			}
		default:
			k.note(fmt.Sprintf("TwiML <%s> not simulated; skipped", verb.XMLName.Local))
		}
	}
}

// twilioStream reads a <Stream> element: its url and <Parameter>s.
func twilioStream(s *twimlNode) streamSpec {
	spec := streamSpec{kind: Twilio, url: s.attr("url"), params: map[string]string{}}
	for i := range s.Children {
		if p := &s.Children[i]; p.XMLName.Local == "Parameter" {
			spec.params[p.attr("name")] = p.attr("value")
		}
	}
	return spec
}
