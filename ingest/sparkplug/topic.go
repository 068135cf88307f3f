package sparkplug

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "andon/ingest/sparkplug/sparkplugpb"
	"andon/plant"
)

// Namespace is the first level of every Sparkplug B topic
// [tck-id-topic-structure-namespace-a].
const Namespace = "spBv1.0"

// prefix is what a topic must start with to be Sparkplug B at all; anything
// else belongs to another dialect.
const prefix = Namespace + "/"

// kind is a Sparkplug message type, the topic's third level (Sparkplug 3.0,
// 4.1.3 message_type Element).
type kind int

const (
	kindNBIRTH kind = iota
	kindNDATA
	kindNDEATH
	kindNCMD
	kindDBIRTH
	kindDDATA
	kindDDEATH
	kindDCMD
	kindSTATE
)

var kinds = map[string]kind{
	"NBIRTH": kindNBIRTH, "NDATA": kindNDATA, "NDEATH": kindNDEATH, "NCMD": kindNCMD,
	"DBIRTH": kindDBIRTH, "DDATA": kindDDATA, "DDEATH": kindDDEATH, "DCMD": kindDCMD,
}

// device reports whether messages of this type name a device: those carry a
// device_id level and the others must not
// [tck-id-topic-structure-namespace-device-id-associated-message-types]
// [tck-id-topic-structure-namespace-device-id-non-associated-message-types].
func (k kind) device() bool {
	return k == kindDBIRTH || k == kindDDATA || k == kindDDEATH || k == kindDCMD
}

// topic is a parsed Sparkplug topic.
type topic struct {
	kind                kind
	group, edge, device string
}

// parseTopic splits a topic that starts with "spBv1.0/" into its elements:
// namespace/group_id/message_type/edge_node_id[/device_id]
// [tck-id-topic-structure], or spBv1.0/STATE/sparkplug_host_id for a host
// application's state [tck-id-host-topic-phid-birth-topic]. It returns a
// reject reason and sentence when the topic is not one of those.
func parseTopic(s string, maxName int) (topic, string, string) {
	levels := strings.Split(s, "/")
	if len(levels) == 3 && levels[1] == "STATE" {
		return topic{kind: kindSTATE}, "", ""
	}
	if len(levels) < 4 || len(levels) > 5 {
		return topic{}, plant.ReasonTopicInvalid,
			"A Sparkplug B topic must be spBv1.0/<group>/<message type>/<edge node>[/<device>] or spBv1.0/STATE/<host>."
	}
	k, ok := kinds[levels[2]]
	if !ok {
		return topic{}, plant.ReasonTopicInvalid, fmt.Sprintf(
			"%q is not a Sparkplug B message type (NBIRTH, NDATA, NDEATH, NCMD, DBIRTH, DDATA, DDEATH, DCMD).",
			plant.Truncate(levels[2], 32))
	}
	if k.device() != (len(levels) == 5) {
		if k.device() {
			return topic{}, plant.ReasonTopicInvalid, fmt.Sprintf("A %s topic must end with a device id.", levels[2])
		}
		return topic{}, plant.ReasonTopicInvalid, fmt.Sprintf("A %s topic must not carry a device id.", levels[2])
	}
	t := topic{kind: k, group: levels[1], edge: levels[3]}
	if len(levels) == 5 {
		t.device = levels[4]
	}
	for _, id := range []struct{ what, v string }{{"group id", t.group}, {"edge node id", t.edge}, {"device id", t.device}} {
		if id.what == "device id" && !k.device() {
			continue
		}
		if why := checkID(id.v, maxName); why != "" {
			return topic{}, plant.ReasonTopicInvalid, "The " + id.what + " " + why
		}
	}
	return t, "", ""
}

// checkID says what is wrong with a group, edge node or device id, or returns
// "". They are topic levels and become asset names: valid UTF-8 without the
// MQTT wildcards [tck-id-topic-structure-namespace-valid-group-id]
// [tck-id-topic-structure-namespace-valid-edge-node-id]
// [tck-id-topic-structure-namespace-valid-device-id], and, for Andon, without
// control characters and no longer than maxName.
func checkID(s string, maxName int) string {
	switch {
	case s == "":
		return "is empty."
	case len(s) > maxName:
		return fmt.Sprintf("is %d bytes long; at most %d are accepted.", len(s), maxName)
	case !plant.ValidName(s):
		return "is not valid UTF-8 or holds a control character."
	case strings.ContainsAny(s, "+#"):
		return "contains an MQTT wildcard (+ or #)."
	}
	return ""
}

// StateTopic is the topic of a host application's STATE messages,
// spBv1.0/STATE/<host_id> [tck-id-host-topic-phid-birth-topic]
// [tck-id-host-topic-phid-death-topic]. The host publishes its birth there
// (retained, QoS 1) and registers its death there as the MQTT will.
func StateTopic(hostID string) string {
	return prefix + "STATE/" + hostID
}

// StatePayload is the JSON payload of a host application's STATE message,
// {"online":true|false,"timestamp":<ms>} (Sparkplug 3.0, 4.2.3 Sparkplug Host
// Application; 3.0 dropped the bdSeq key of earlier drafts).
func StatePayload(online bool, tsMS int64) []byte {
	b := make([]byte, 0, 48)
	b = append(b, `{"online":`...)
	b = strconv.AppendBool(b, online)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, tsMS, 10)
	return append(b, '}')
}

// RebirthRequest is an NCMD asking edge node <edge> of group <group> to
// publish its NBIRTH and all its DBIRTHs again: one metric "Node
// Control/Rebirth", Boolean true [tck-id-operational-behavior-data-commands-ncmd-rebirth-verb]
// [tck-id-operational-behavior-data-commands-ncmd-rebirth-name]
// [tck-id-operational-behavior-data-commands-ncmd-rebirth-value], with a
// timestamp [tck-id-payloads-ncmd-timestamp] and no sequence number
// [tck-id-payloads-ncmd-seq].
func RebirthRequest(group, edge string, tsMS int64) (string, []byte) {
	ts := uint64(max(tsMS, 0))
	p := &pb.Payload{
		Timestamp: proto.Uint64(ts),
		Metrics: []*pb.Payload_Metric{{
			Name:      proto.String(rebirthMetric),
			Timestamp: proto.Uint64(ts),
			Datatype:  proto.Uint32(uint32(pb.DataType_Boolean)),
			Value:     &pb.Payload_Metric_BooleanValue{BooleanValue: true},
		}},
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		// Marshalling a message built from constants cannot fail: proto2
		// checks no UTF-8 and the message has no required fields.
		panic(fmt.Sprintf("sparkplug: encoding a rebirth request: %v", err))
	}
	return prefix + group + "/NCMD/" + edge, b
}

// rebirthMetric is the metric a rebirth request sets
// [tck-id-operational-behavior-data-commands-rebirth-name].
const rebirthMetric = "Node Control/Rebirth"
