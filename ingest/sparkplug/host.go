// Package sparkplug is Andon's Sparkplug B 3.0 host application: a pure,
// concurrency-safe state machine that follows the birth and death
// certificates of edge nodes and devices and turns their messages into
// readings. It does no I/O of its own; the caller hands it messages, the
// time they arrived, and a function that publishes commands (rebirth
// requests) to the broker.
//
// Everything it receives comes from devices and is treated as untrusted:
// ids and names are checked, payloads are bounded before they are decoded,
// and the tables it keeps are bounded in all.
package sparkplug

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "andon/ingest/sparkplug/sparkplugpb"
	"andon/plant"
)

// Defaults of Config.
const (
	defaultHostID         = "andon"
	defaultReorderTimeout = 2 * time.Second
	defaultMaxName        = 128
	defaultMaxValues      = 500
	defaultMaxWordLen     = 64
	defaultMaxFuture      = 10 * time.Minute
	defaultMaxPayload     = 256 << 10
	defaultMaxNodes       = 10_000
	defaultMaxMetrics     = 100_000
)

// rebirthEveryMS is the least time between two rebirth requests to one edge
// node: a node that answers slowly, or a flood of data from a node Andon has
// not seen born, must not turn into a flood of commands.
const rebirthEveryMS = 5_000

// maxRejectPayload is how much of a rejected payload is kept for an admin to see.
const maxRejectPayload = 256

// maxSkippedNamed is how many skipped metrics a reject's detail names.
const maxSkippedNamed = 10

// Config of a Host. Zero values get sensible defaults.
type Config struct {
	HostID string // this host application's id, for the STATE topic; default "andon"
	// RebirthOnGap asks for a rebirth when a seq gap is not filled within
	// ReorderTimeout [tck-id-operational-behavior-host-reordering-rebirth].
	// Off by default: data are stored as they come, with their own
	// timestamps, so a lost message costs one value, not the session.
	RebirthOnGap   bool
	ReorderTimeout time.Duration // default 2 s [tck-id-operational-behavior-host-reordering-param]
	// Publish sends a command to the broker (NCMD rebirth requests); nil: no
	// commands are sent (they are counted only). It is called on the
	// goroutine of Handle or Tick but never with the host's lock held, so
	// it may block other callers of the host no longer than it blocks its
	// own; where that goroutine must not wait for the network (a broker
	// hook), Publish should hand the command over and return.
	Publish    func(topic string, payload []byte) error
	MaxName    int           // bytes of a group/node/device id and of a metric name; default 128
	MaxValues  int           // metrics per payload; default 500
	MaxWordLen int           // bytes of a string metric stored as a word; default 64
	MaxFuture  time.Duration // how far ahead of its arrival a timestamp may be; default 10 min
	Logger     *slog.Logger
	// MaxPayload bounds the bytes of a payload that is decoded; default
	// 256 KiB, room for a birth of MaxValues metrics with properties.
	MaxPayload int
	// MaxNodes bounds the edge nodes followed (default 10,000) and
	// MaxMetrics the metric definitions plus devices held in alias tables
	// in all (default 100,000). Births past them are refused with a reject;
	// nodes that are not alive make room for new ones.
	MaxNodes   int
	MaxMetrics int
}

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	if c.HostID == "" {
		c.HostID = defaultHostID
	}
	if c.ReorderTimeout <= 0 {
		c.ReorderTimeout = defaultReorderTimeout
	}
	if c.MaxName <= 0 {
		c.MaxName = defaultMaxName
	}
	if c.MaxValues <= 0 {
		c.MaxValues = defaultMaxValues
	}
	if c.MaxWordLen <= 0 {
		c.MaxWordLen = defaultMaxWordLen
	}
	if c.MaxFuture <= 0 {
		c.MaxFuture = defaultMaxFuture
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = defaultMaxPayload
	}
	if c.MaxNodes <= 0 {
		c.MaxNodes = defaultMaxNodes
	}
	if c.MaxMetrics <= 0 {
		c.MaxMetrics = defaultMaxMetrics
	}
	return c
}

// Counts are a host's running totals, for /metrics.
type Counts struct {
	Births       int64 // NBIRTH and DBIRTH certificates accepted
	Deaths       int64 // NDEATH and DDEATH certificates accepted
	DataMessages int64 // NDATA and DDATA messages of born nodes and devices
	// Unsupported counts metric values of datatypes Andon does not store
	// (DateTime, UUID, DataSet, Bytes, File, Template, property sets,
	// arrays), in all and by datatype name.
	Unsupported       int64
	UnsupportedByType map[string]int64
	UnknownAliases    int64 // metrics of data messages whose alias or name no birth defined
	NoBirth           int64 // data messages from a node or device with no birth seen
	SeqGaps           int64 // jumps in a node's message sequence
	RebirthRequests   int64 // rebirth requests made (published when Config.Publish is set)
	RebirthFailures   int64 // rebirth requests Config.Publish failed to send
	StaleDeaths       int64 // NDEATHs ignored because their bdSeq is not the current session's
	DecodeErrors      int64 // payloads that are not Sparkplug B protobuf
	RefusedBirths     int64 // births refused at the memory bounds (MaxNodes, MaxMetrics)
	Nodes             int   // edge nodes followed now, alive or not
	Definitions       int   // metric definitions and devices held now
}

// Host follows Sparkplug edge nodes and devices and turns their messages
// into readings. Its methods may be called from many goroutines.
type Host struct {
	cfg Config

	mu      sync.Mutex
	nodes   map[nodeKey]*node
	gaps    map[*node]struct{} // nodes with sequence numbers still missing
	entries int                // metric definitions and devices in all tables
	c       Counts             // totals kept under mu (not the atomics below)
	byType  map[pb.DataType]int64

	decodeErrors    atomic.Int64
	rebirthFailures atomic.Int64
}

// nodeKey names an edge node: its group and edge node ids
// [tck-id-topic-structure-namespace-unique-edge-node-descriptor].
type nodeKey struct{ group, edge string }

// node is what the host knows of one edge node.
type node struct {
	key   nodeKey
	alive bool // between an accepted NBIRTH and its NDEATH (or a lost connection)

	// bdSeq of the current session's NBIRTH, to tell its NDEATH from a stale
	// will of an earlier session [tck-id-payloads-ndeath-bdseq].
	bdSeq    uint64
	hasBdSeq bool

	// Message order [tck-id-payloads-sequence-num-incrementing]: next is the
	// seq expected next; missing holds the numbers skipped by a jump that
	// have not arrived since, and gapSince when the first of them was
	// noticed [tck-id-operational-behavior-host-reordering-start].
	next     uint8
	seqKnown bool
	missing  [4]uint64
	nMissing int
	gapOpen  bool
	gapSince int64

	metrics *table            // the NBIRTH's definitions, while alive
	devices map[string]*table // alive devices and their DBIRTH's definitions

	rebirthAsked bool
	lastRebirth  int64 // ms of the last rebirth request
}

// table maps a birth's aliases and names to metric definitions.
type table struct {
	byAlias map[uint64]*def
	byName  map[string]*def
	n       int // definitions held
}

// def is one metric as a birth certificate defined it.
type def struct {
	name string
	dt   pb.DataType
	unit string
	// skip marks protocol metrics that are never stored (see skippedName);
	// bad marks a metric whose birth was rejected (its name), whose later
	// values are dropped without a second reject.
	skip, bad bool
}

// New returns a host with no node known.
func New(cfg Config) *Host {
	return &Host{
		cfg:    cfg.withDefaults(),
		nodes:  make(map[nodeKey]*node),
		gaps:   make(map[*node]struct{}),
		byType: make(map[pb.DataType]int64),
	}
}

// HostID is the host application id in use (Config.HostID or its default).
func (h *Host) HostID() string { return h.cfg.HostID }

// result is what handling one message produced: readings, problems of the
// whole message (notes; the first gives the reject's reason), metrics that
// were skipped, and whether a rebirth request is to be sent.
type result struct {
	rs      []plant.Reading
	notes   []note
	skips   []skip
	rebirth bool
}

type note struct{ reason, detail string }

type skip struct{ name, reason, why string }

func (r *result) note(reason, detail string) { r.notes = append(r.notes, note{reason, detail}) }

func (r *result) skip(name, reason, why string) { r.skips = append(r.skips, skip{name, reason, why}) }

// Handle takes one message. ok is false when the topic is not Sparkplug B
// (does not start with "spBv1.0/"): the caller then tries other dialects.
// For Sparkplug topics it returns the readings to store (possibly none) and
// a reject when something was wrong (a bad payload, an unknown alias, a
// value that cannot be stored...): rejects are what an admin sees in a
// dead-letter list, so their Detail is a clear sentence.
func (h *Host) Handle(topic string, payload []byte, recvMS int64) (rs []plant.Reading, rej *plant.Reject, ok bool) {
	if !strings.HasPrefix(topic, prefix) {
		return nil, nil, false
	}
	reject := func(reason, detail string) *plant.Reject {
		return &plant.Reject{
			TS:      recvMS,
			Topic:   topic,
			Reason:  reason,
			Detail:  detail,
			Payload: bytes.Clone(payload[:min(len(payload), maxRejectPayload)]),
		}
	}
	t, reason, detail := parseTopic(topic, h.cfg.MaxName)
	if reason != "" {
		return nil, reject(reason, detail), true
	}
	switch t.kind {
	case kindSTATE, kindNCMD, kindDCMD:
		// Other hosts' states and the commands that hosts (Andon among
		// them) send to edge nodes carry no readings.
		return nil, nil, true
	}
	p, reason, detail := h.decode(payload)
	if reason != "" {
		return nil, reject(reason, detail), true
	}

	res := result{rs: make([]plant.Reading, 0, len(p.GetMetrics()))}
	h.mu.Lock()
	h.handle(t, topic, p, recvMS, &res)
	h.mu.Unlock()

	if res.rebirth {
		h.sendRebirth(t.group, t.edge, recvMS)
	}
	if len(res.notes) == 0 && len(res.skips) == 0 {
		return res.rs, nil, true
	}
	var parts []string
	for _, n := range res.notes {
		parts = append(parts, n.detail)
	}
	if len(res.skips) > 0 {
		parts = append(parts, skippedDetail(res.skips, len(res.rs)))
	}
	if len(res.notes) > 0 {
		reason = res.notes[0].reason
	} else {
		reason = res.skips[0].reason
	}
	return res.rs, reject(reason, strings.Join(parts, " ")), true
}

// decode bounds and decodes a payload. The metrics are counted on the wire
// first, so a payload of a hundred thousand tiny metrics is refused before
// it is expanded into as many structs.
func (h *Host) decode(b []byte) (*pb.Payload, string, string) {
	if len(b) > h.cfg.MaxPayload {
		return nil, plant.ReasonTooLarge,
			fmt.Sprintf("The payload is %d bytes; at most %d are accepted.", len(b), h.cfg.MaxPayload)
	}
	n, err := countMetrics(b)
	if err == nil && n > h.cfg.MaxValues {
		return nil, plant.ReasonTooManyValues,
			fmt.Sprintf("The payload holds %d metrics; at most %d are accepted.", n, h.cfg.MaxValues)
	}
	p := new(pb.Payload)
	if err == nil {
		err = proto.Unmarshal(b, p)
	}
	if err != nil {
		h.decodeErrors.Add(1)
		return nil, plant.ReasonBadSparkplug,
			fmt.Sprintf("The payload is not a Sparkplug B protobuf payload (%v).", err)
	}
	return p, "", ""
}

// countMetrics counts the metrics field (2) of an encoded Payload without
// decoding it.
func countMetrics(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, protowire.ParseError(l)
		}
		b = b[l:]
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return 0, protowire.ParseError(l)
		}
		if num == 2 && typ == protowire.BytesType {
			n++
		}
		b = b[l:]
	}
	return n, nil
}

// handle applies one decoded message to the host's state; h.mu is held.
func (h *Host) handle(t topic, topicName string, p *pb.Payload, recvMS int64, res *result) {
	key := nodeKey{t.group, t.edge}
	switch t.kind {
	case kindNBIRTH:
		h.nbirth(key, topicName, p, recvMS, res)
		return
	case kindNDEATH:
		h.ndeath(key, topicName, p, recvMS, res)
		return
	}
	n := h.nodes[key]
	if n == nil || !n.alive {
		if t.kind != kindDDEATH {
			// A device's death needs no birth to be understood; anything
			// else from a node whose birth Andon has not seen cannot be
			// named.
			h.noBirth(key, "", recvMS, res)
		}
		return
	}
	// NDATA, DBIRTH, DDATA and DDEATH carry the node's sequence number
	// [tck-id-payloads-ndata-seq-inc] [tck-id-payloads-dbirth-seq-inc]
	// [tck-id-payloads-ddata-seq-inc] [tck-id-payloads-ddeath-seq-inc].
	h.checkSeq(n, p, recvMS)
	switch t.kind {
	case kindNDATA:
		h.data(n, n.metrics, nodePath(key), topicName, p, recvMS, res)
	case kindDBIRTH:
		h.dbirth(n, t.device, topicName, p, recvMS, res)
	case kindDDATA:
		tbl := n.devices[t.device]
		if tbl == nil {
			h.noBirth(key, t.device, recvMS, res)
			return
		}
		h.data(n, tbl, devicePath(key, t.device), topicName, p, recvMS, res)
	case kindDDEATH:
		// [tck-id-operational-behavior-edge-node-termination-host-action-ddeath-devices-offline]:
		// the device is offline and its metrics stale until its next DBIRTH.
		tbl := n.devices[t.device]
		if tbl == nil {
			return
		}
		h.entries -= tbl.n + 1
		delete(n.devices, t.device)
		h.c.Deaths++
		res.rs = append(res.rs, offline(devicePath(key, t.device), recvMS, topicName))
	}
}

// nodePath is where an edge node's own metrics go: the group is the site,
// the edge node both the line and a machine of it.
func nodePath(k nodeKey) plant.Path {
	return plant.Path{Site: k.group, Line: k.edge, Machine: k.edge}
}

// devicePath is where a device's metrics go: a machine of its edge node's line.
func devicePath(k nodeKey, device string) plant.Path {
	return plant.Path{Site: k.group, Line: k.edge, Machine: device}
}

// offline is the announcement that a machine went offline at ts.
func offline(p plant.Path, ts int64, topic string) plant.Reading {
	return plant.Reading{Path: p, TS: ts, Offline: true, Topic: topic}
}

// nbirth starts a new session of an edge node: whatever was known of the
// previous one (its devices, all aliases) is forgotten, and the devices are
// dead until their DBIRTHs (Sparkplug 3.0, 5.4 Edge Node Session
// Establishment; [tck-id-payloads-dbirth-order]).
func (h *Host) nbirth(key nodeKey, topicName string, p *pb.Payload, recvMS int64, res *result) {
	n := h.node(key, true)
	if n == nil {
		h.c.RefusedBirths++
		h.cfg.Logger.Warn("sparkplug: birth refused, too many edge nodes", "group", key.group, "edge_node", key.edge, "max_nodes", h.cfg.MaxNodes)
		res.note(plant.ReasonTagLimit, fmt.Sprintf(
			"Andon already follows %d edge nodes, all of them alive, so the birth of edge node %q was refused.",
			h.cfg.MaxNodes, key.edge))
		return
	}
	h.kill(n)
	tbl, defs := h.define(p, res)
	if h.entries+tbl.n > h.cfg.MaxMetrics {
		h.refuse(key, "", tbl.n, res)
		return
	}
	h.entries += tbl.n
	n.alive, n.metrics, n.devices = true, tbl, make(map[string]*table)
	// [tck-id-topics-nbirth-bdseq-included]: the death certificate of this
	// session will carry the same number.
	n.bdSeq, n.hasBdSeq = bdSeqOf(p)
	// [tck-id-payloads-nbirth-seq]: 0..255, usually 0; the next message of
	// the node carries one more.
	if s := p.Seq; s != nil && *s <= 255 {
		n.next, n.seqKnown = uint8(*s)+1, true
	}
	h.c.Births++
	h.values(p, defs, nodePath(key), topicName, recvMS, res)
}

// dbirth starts a device's session, replacing a previous one.
func (h *Host) dbirth(n *node, device, topicName string, p *pb.Payload, recvMS int64, res *result) {
	if old := n.devices[device]; old != nil {
		h.entries -= old.n + 1
		delete(n.devices, device)
	}
	tbl, defs := h.define(p, res)
	// A device costs one entry of its own, so that births of devices
	// without metrics cannot grow the tables without bound either.
	if h.entries+tbl.n+1 > h.cfg.MaxMetrics {
		h.refuse(n.key, device, tbl.n, res)
		return
	}
	h.entries += tbl.n + 1
	n.devices[device] = tbl
	h.c.Births++
	h.values(p, defs, devicePath(n.key, device), topicName, recvMS, res)
}

// refuse turns down a birth that would take the tables past MaxMetrics.
func (h *Host) refuse(key nodeKey, device string, size int, res *result) {
	h.c.RefusedBirths++
	what := fmt.Sprintf("edge node %q", key.edge)
	if device != "" {
		what = fmt.Sprintf("device %q of edge node %q", device, key.edge)
	}
	h.cfg.Logger.Warn("sparkplug: birth refused, too many metrics", "group", key.group, "edge_node", key.edge,
		"device", device, "metrics", size, "max_metrics", h.cfg.MaxMetrics)
	res.skips = nil
	res.note(plant.ReasonTagLimit, fmt.Sprintf(
		"The birth of %s defines %d metrics, more than the %d that Andon still has room for (%d in all); it was refused and its data will not be stored.",
		what, size, max(h.cfg.MaxMetrics-h.entries, 0), h.cfg.MaxMetrics))
}

// define builds the alias table of a birth certificate. Births name every
// metric with its datatype and, where aliases are used, its alias
// [tck-id-payloads-alias-birth-requirement] [tck-id-payloads-metric-datatype-req].
// defs[i] is the definition of p.Metrics[i], nil where none could be made.
// A metric whose name is unusable is still defined by its alias, marked
// bad, so that its later values are dropped quietly instead of being taken
// for unknown aliases, which would ask for rebirths forever.
func (h *Host) define(p *pb.Payload, res *result) (*table, []*def) {
	ms := p.GetMetrics()
	t := &table{byAlias: make(map[uint64]*def), byName: make(map[string]*def, len(ms))}
	defs := make([]*def, len(ms))
	for i, m := range ms {
		label := metricLabel(m, i)
		d := &def{dt: pb.DataType(m.GetDatatype())}
		name := m.GetName()
		switch {
		case name == "":
			d.bad = true
			res.skip(label, plant.ReasonNameInvalid, "a birth certificate must name every metric")
		case len(name) > h.cfg.MaxName:
			d.bad = true
			res.skip(label, plant.ReasonNameInvalid,
				fmt.Sprintf("its name is %d bytes long; at most %d are accepted", len(name), h.cfg.MaxName))
		case !plant.ValidName(name):
			d.bad = true
			res.skip(label, plant.ReasonNameInvalid, "its name is not valid UTF-8 or holds a control character")
		case t.byName[name] != nil:
			res.skip(label, plant.ReasonNameInvalid, "the birth defines this name twice; the first definition is kept")
			continue
		default:
			d.name, d.skip, d.unit = name, skippedName(name), unitOf(m)
		}
		if m.Alias != nil {
			// [tck-id-payloads-alias-uniqueness]
			if t.byAlias[*m.Alias] != nil {
				res.skip(label, plant.ReasonNameInvalid,
					fmt.Sprintf("its alias %d is already used by another metric of this birth; the first one is kept", *m.Alias))
				continue
			}
			t.byAlias[*m.Alias] = d
		} else if d.bad {
			continue // neither name nor alias to find it by
		}
		if !d.bad {
			t.byName[name] = d
		}
		t.n++
		defs[i] = d
	}
	return t, defs
}

// metricLabel names a metric in a reject: by name, else by alias, else by
// its place in the payload.
func metricLabel(m *pb.Payload_Metric, i int) string {
	switch {
	case m.GetName() != "":
		return m.GetName()
	case m.Alias != nil:
		return fmt.Sprintf("alias %d", *m.Alias)
	}
	return fmt.Sprintf("metric #%d", i+1)
}

// values stores the current values a birth carries
// [tck-id-operational-behavior-data-publish-nbirth-values].
func (h *Host) values(p *pb.Payload, defs []*def, path plant.Path, topicName string, recvMS int64, res *result) {
	for i, m := range p.GetMetrics() {
		d := defs[i]
		if d == nil || d.skip || d.bad {
			continue
		}
		h.value(m, d, d.dt, path, topicName, p.GetTimestamp(), recvMS, res)
	}
}

// data stores the values of an NDATA or DDATA message. Data messages name
// their metrics by alias alone when the birth gave aliases
// [tck-id-payloads-alias-data-cmd-requirement], and may leave out the
// datatype [tck-id-payloads-metric-datatype-not-req]: both come from the
// birth. A metric no birth defined is not stored; it means Andon missed
// a birth, so a rebirth is requested.
func (h *Host) data(n *node, tbl *table, path plant.Path, topicName string, p *pb.Payload, recvMS int64, res *result) {
	h.c.DataMessages++
	var unknown []string
	for i, m := range p.GetMetrics() {
		var d *def
		if m.Alias != nil {
			d = tbl.byAlias[*m.Alias]
		}
		if d == nil && m.Name != nil {
			name := m.GetName()
			if name == "" || len(name) > h.cfg.MaxName || !plant.ValidName(name) {
				res.skip(metricLabel(m, i), plant.ReasonNameInvalid,
					"its name is empty, too long, not valid UTF-8 or holds a control character")
				continue
			}
			d = tbl.byName[name]
		}
		if d == nil {
			h.c.UnknownAliases++
			unknown = append(unknown, metricLabel(m, i))
			continue
		}
		if d.skip || d.bad {
			continue
		}
		dt := d.dt
		if dt == pb.DataType_Unknown && m.Datatype != nil {
			dt = pb.DataType(m.GetDatatype())
		}
		h.value(m, d, dt, path, topicName, p.GetTimestamp(), recvMS, res)
	}
	if len(unknown) > 0 && h.mayRebirth(n, recvMS) {
		res.rebirth = true
		res.note(plant.ReasonSparkplugNoBirth, fmt.Sprintf(
			"%d metric(s) have aliases or names that no birth certificate of edge node %q defined (%s); they were not stored and a rebirth was requested.",
			len(unknown), n.key.edge, listNames(unknown)))
	}
}

// value turns one metric into a reading, or counts or notes why not.
func (h *Host) value(m *pb.Payload_Metric, d *def, dt pb.DataType, path plant.Path, topicName string, payloadTS uint64, recvMS int64, res *result) {
	v, word, out, reason, why := convert(m, dt, h.cfg.MaxWordLen)
	switch out {
	case outNull:
		return
	case outUnsupported:
		h.c.Unsupported++
		h.byType[dt]++
		return
	case outBad:
		res.skip(d.name, reason, why)
		return
	}
	ts, arrival, reason, why := stamp(m, payloadTS, recvMS, h.cfg.MaxFuture)
	if reason != "" {
		res.skip(d.name, reason, why)
		return
	}
	res.rs = append(res.rs, plant.Reading{
		Path: path, Metric: d.name, TS: ts, Arrival: arrival,
		Value: v, Word: word, Unit: d.unit, Topic: topicName,
	})
}

// noBirth handles data from a node or device whose birth Andon has not seen
// (it may have started after the birth, or refused it): the metrics cannot
// be named, so nothing is stored and the edge node is asked to rebirth. The
// reject says so when the request is made, not for every message until the
// birth arrives.
func (h *Host) noBirth(key nodeKey, device string, recvMS int64, res *result) {
	h.c.NoBirth++
	n := h.node(key, true)
	if n == nil || !h.mayRebirth(n, recvMS) {
		return
	}
	res.rebirth = true
	what := fmt.Sprintf("edge node %q", key.edge)
	if device != "" {
		what = fmt.Sprintf("device %q of edge node %q", device, key.edge)
	}
	res.note(plant.ReasonSparkplugNoBirth, fmt.Sprintf(
		"No birth certificate of %s has been seen (Andon may have started after it), so its metrics cannot be named; the message was not stored and a rebirth was requested.",
		what))
}

// ndeath ends an edge node's session: the node and all its devices are
// offline from the time the death arrived, and their metrics stale
// [tck-id-operational-behavior-edge-node-termination-host-action-ndeath-node-offline]
// [tck-id-operational-behavior-edge-node-termination-host-action-ndeath-devices-offline].
// A death whose bdSeq is not that of the current NBIRTH is the will of an
// earlier connection, delivered late, and is ignored [tck-id-payloads-ndeath-bdseq].
func (h *Host) ndeath(key nodeKey, topicName string, p *pb.Payload, recvMS int64, res *result) {
	n := h.nodes[key]
	if n == nil || !n.alive {
		return
	}
	if bd, ok := bdSeqOf(p); ok && n.hasBdSeq && bd != n.bdSeq {
		h.c.StaleDeaths++
		return
	}
	h.c.Deaths++
	res.rs = append(res.rs, h.offlineAll(n, recvMS, topicName)...)
	h.kill(n)
}

// offlineAll announces a node's machine and its alive devices' machines
// offline, devices in name order.
func (h *Host) offlineAll(n *node, ts int64, topicName string) []plant.Reading {
	rs := []plant.Reading{offline(nodePath(n.key), ts, topicName)}
	for _, d := range slices.Sorted(maps.Keys(n.devices)) {
		rs = append(rs, offline(devicePath(n.key, d), ts, topicName))
	}
	return rs
}

// kill forgets a node's session: it is dead, its devices with it, and their
// aliases are freed.
func (h *Host) kill(n *node) {
	if n.metrics != nil {
		h.entries -= n.metrics.n
	}
	for _, d := range n.devices {
		h.entries -= d.n + 1
	}
	n.alive, n.metrics, n.devices, n.seqKnown = false, nil, nil, false
	h.closeGap(n)
}

// node returns the node of key, creating it when create is set. A new node
// past MaxNodes takes the place of one that is not alive; when all are
// alive, node returns nil.
func (h *Host) node(key nodeKey, create bool) *node {
	if n := h.nodes[key]; n != nil || !create {
		return n
	}
	if len(h.nodes) >= h.cfg.MaxNodes {
		evicted := false
		for k, old := range h.nodes {
			if !old.alive {
				h.kill(old)
				delete(h.nodes, k)
				evicted = true
				break
			}
		}
		if !evicted {
			return nil
		}
	}
	n := &node{key: key}
	h.nodes[key] = n
	return n
}

// checkSeq follows a node's message sequence. Messages are never held back:
// out-of-order data carry their own timestamps and are stored at once. A
// jump marks the skipped numbers missing and starts the reorder timer
// [tck-id-operational-behavior-host-reordering-start]; a late message
// fills its place, and when all have arrived the timer stops
// [tck-id-operational-behavior-host-reordering-success]. Tick handles the
// timeout.
func (h *Host) checkSeq(n *node, p *pb.Payload, recvMS int64) {
	if p.Seq == nil || *p.Seq > 255 {
		return // no usable seq [tck-id-payloads-sequence-num-always-included]: nothing to check
	}
	s := uint8(*p.Seq)
	if !n.seqKnown {
		n.next, n.seqKnown = s+1, true
		return
	}
	if s == n.next {
		n.next++
		return
	}
	if n.isMissing(s) {
		n.missing[s/64] &^= 1 << (s % 64)
		n.nMissing--
		if n.nMissing == 0 {
			h.closeGap(n)
		}
		return
	}
	if ahead := s - n.next; ahead < 128 {
		h.c.SeqGaps++
		for x := n.next; x != s; x++ {
			if !n.isMissing(x) {
				n.missing[x/64] |= 1 << (x % 64)
				n.nMissing++
			}
		}
		n.next = s + 1
		if !n.gapOpen {
			n.gapOpen, n.gapSince = true, recvMS
			h.gaps[n] = struct{}{}
		}
	}
	// Otherwise s is behind and not missing: a duplicate, or a straggler of
	// a gap already given up. Its data were stored like any other.
}

func (n *node) isMissing(s uint8) bool { return n.missing[s/64]&(1<<(s%64)) != 0 }

// closeGap stops a node's reorder timer and forgets its missing numbers.
func (h *Host) closeGap(n *node) {
	n.missing, n.nMissing, n.gapOpen, n.gapSince = [4]uint64{}, 0, false, 0
	delete(h.gaps, n)
}

// mayRebirth reports whether a rebirth request may go to n now (at most one
// per rebirthEveryMS), and if so counts it as made.
func (h *Host) mayRebirth(n *node, nowMS int64) bool {
	if n.rebirthAsked && nowMS >= n.lastRebirth && nowMS-n.lastRebirth < rebirthEveryMS {
		return false
	}
	n.rebirthAsked, n.lastRebirth = true, nowMS
	h.c.RebirthRequests++
	return true
}

// sendRebirth publishes a rebirth request; h.mu must not be held, since
// Publish may block on the network.
func (h *Host) sendRebirth(group, edge string, tsMS int64) {
	if h.cfg.Publish == nil {
		return
	}
	topic, payload := RebirthRequest(group, edge, tsMS)
	if err := h.cfg.Publish(topic, payload); err != nil {
		h.rebirthFailures.Add(1)
		h.cfg.Logger.Warn("sparkplug: rebirth request not sent", "topic", topic, "err", err)
	}
}

// Lost says the connection to the broker was lost at recvMS: every node and
// device known alive is now dead (until its next birth), and the returned
// readings are Offline announcements for each of their machines, nodes in
// group and edge node order. A host that loses its broker can no longer
// tell what is alive; Sparkplug 3.0 asks it to mark all of it stale
// (5.3 Host Application Session Establishment).
func (h *Host) Lost(recvMS int64) []plant.Reading {
	h.mu.Lock()
	defer h.mu.Unlock()
	var alive []*node
	for _, n := range h.nodes {
		if n.alive {
			alive = append(alive, n)
		}
	}
	slices.SortFunc(alive, func(a, b *node) int {
		return cmp.Or(cmp.Compare(a.key.group, b.key.group), cmp.Compare(a.key.edge, b.key.edge))
	})
	var rs []plant.Reading
	for _, n := range alive {
		rs = append(rs, h.offlineAll(n, recvMS, prefix+n.key.group+"/NDEATH/"+n.key.edge)...)
		h.kill(n)
	}
	return rs
}

// Tick runs time-driven work: a sequence gap whose missing messages have not
// all arrived within ReorderTimeout is given up, and with RebirthOnGap the
// edge node is asked to rebirth [tck-id-operational-behavior-host-reordering-rebirth].
// The lead calls it about once a second.
func (h *Host) Tick(nowMS int64) {
	var ask []nodeKey
	h.mu.Lock()
	timeout := h.cfg.ReorderTimeout.Milliseconds()
	for n := range h.gaps {
		if nowMS-n.gapSince < timeout {
			continue
		}
		h.closeGap(n)
		if h.cfg.RebirthOnGap && n.alive && h.mayRebirth(n, nowMS) {
			ask = append(ask, n.key)
		}
	}
	h.mu.Unlock()
	for _, k := range ask {
		h.sendRebirth(k.group, k.edge, nowMS)
	}
}

// Counts returns running totals for /metrics.
func (h *Host) Counts() Counts {
	h.mu.Lock()
	c := h.c
	c.UnsupportedByType = make(map[string]int64, len(h.byType))
	for dt, k := range h.byType {
		c.UnsupportedByType[dataTypeName(dt)] += k
	}
	c.Nodes, c.Definitions = len(h.nodes), h.entries
	h.mu.Unlock()
	c.DecodeErrors = h.decodeErrors.Load()
	c.RebirthFailures = h.rebirthFailures.Load()
	return c
}

// listNames joins metric names for a reject, at most maxSkippedNamed of them.
func listNames(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i == maxSkippedNamed {
			fmt.Fprintf(&b, " and %d more", len(names)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", plant.Truncate(n, 64))
	}
	return b.String()
}

// skippedDetail is the sentence an admin reads for metrics that were skipped.
func skippedDetail(skips []skip, kept int) string {
	var b strings.Builder
	if kept == 0 {
		fmt.Fprintf(&b, "No value was stored; %d metric(s) skipped: ", len(skips))
	} else {
		fmt.Fprintf(&b, "%d value(s) stored, %d metric(s) skipped: ", kept, len(skips))
	}
	for i, s := range skips {
		if i == maxSkippedNamed {
			fmt.Fprintf(&b, "; and %d more", len(skips)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%q (%s)", plant.Truncate(s.name, 64), s.why)
	}
	b.WriteString(".")
	return b.String()
}
