package sparkplug

import (
	"fmt"
	"math"
	"strings"
	"time"

	pb "andon/ingest/sparkplug/sparkplugpb"
	"andon/plant"
)

// Bounds of a plausible reading time, the same as for Andon's other dialects:
// anything outside is a device with a wrong clock or a value in the wrong
// unit, not a reading to store.
var (
	minTS = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxTS = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

// maxUnitLen bounds an engineering unit taken from a birth's properties.
const maxUnitLen = 32

// outcome is what became of one metric's value.
type outcome int

const (
	outNumber      outcome = iota // a number in v
	outWord                       // a word in word
	outNull                       // is_null: nothing to store, nothing wrong
	outUnsupported                // a datatype Andon does not store: counted, not rejected
	outBad                        // something wrong: skipped and named in the reject
)

// supported reports whether Andon stores values of datatype dt: the scalar
// numbers, booleans and strings (Sparkplug 3.0, 6.4.16 Data Types). Every
// other valid datatype is counted as unsupported.
func supported(dt pb.DataType) bool {
	switch dt {
	case pb.DataType_Int8, pb.DataType_Int16, pb.DataType_Int32, pb.DataType_Int64,
		pb.DataType_UInt8, pb.DataType_UInt16, pb.DataType_UInt32, pb.DataType_UInt64,
		pb.DataType_Float, pb.DataType_Double, pb.DataType_Boolean, pb.DataType_String, pb.DataType_Text:
		return true
	}
	return false
}

// validDataType reports whether dt is one of the enumerated Sparkplug
// datatypes [tck-id-payloads-metric-datatype-value]. Unknown (0) is a
// placeholder, not a type a metric may have.
func validDataType(dt uint32) bool {
	return dt >= uint32(pb.DataType_Int8) && dt <= uint32(pb.DataType_DateTimeArray)
}

// dataTypeName names a datatype for counts and rejects.
func dataTypeName(dt pb.DataType) string {
	if name, ok := pb.DataType_name[int32(dt)]; ok && validDataType(uint32(dt)) {
		return name
	}
	return fmt.Sprintf("datatype %d", uint32(dt))
}

// convert turns one metric's value into a number or a word according to its
// datatype dt (from the birth certificate). reason and why are set for
// outBad.
//
// Integers travel in the unsigned protobuf fields int_value (uint32) and
// long_value (uint64) (Sparkplug 3.0, 6.4.16 Data Types). The signed types
// narrower than 64 bits are read from their low bits and sign-extended, so a
// -1 Int8 is right whether the edge node sent it as 0xFF or, as Sparkplug 3.0
// requires, sign-extended to 0xFFFFFFFF; UInt32 is the uint32 of int_value
// and UInt64 the uint64 of long_value. A value in the other integer field
// than the spec names is read the same way rather than refused, because edge
// implementations differ there.
func convert(m *pb.Payload_Metric, dt pb.DataType, maxWord int) (v float64, word string, out outcome, reason, why string) {
	if !validDataType(uint32(dt)) {
		return 0, "", outBad, plant.ReasonNotANumber,
			fmt.Sprintf("its datatype %d is not a Sparkplug B datatype", uint32(dt))
	}
	if !supported(dt) {
		return 0, "", outUnsupported, "", ""
	}
	// [tck-id-operational-behavior-data-publish-nbirth-values]: a null value
	// is flagged, not sent; there is nothing to store.
	if m.GetIsNull() {
		return 0, "", outNull, "", ""
	}
	bad := func(format string, args ...any) (float64, string, outcome, string, string) {
		return 0, "", outBad, plant.ReasonNotANumber, fmt.Sprintf(format, args...)
	}
	var bits uint64
	var isInt bool
	switch x := m.GetValue().(type) {
	case nil:
		return bad("it has no value and is not flagged null")
	case *pb.Payload_Metric_IntValue:
		bits, isInt = uint64(x.IntValue), true
	case *pb.Payload_Metric_LongValue:
		bits, isInt = x.LongValue, true
	}
	switch dt {
	case pb.DataType_Int8, pb.DataType_Int16, pb.DataType_Int32, pb.DataType_Int64,
		pb.DataType_UInt8, pb.DataType_UInt16, pb.DataType_UInt32, pb.DataType_UInt64:
		if !isInt {
			return bad("its %s value is not in int_value or long_value", dataTypeName(dt))
		}
		return intValue(dt, bits, m), "", outNumber, "", ""
	case pb.DataType_Float, pb.DataType_Double:
		var f float64
		switch x := m.GetValue().(type) {
		case *pb.Payload_Metric_FloatValue:
			f = float64(x.FloatValue)
		case *pb.Payload_Metric_DoubleValue:
			f = x.DoubleValue
		default:
			return bad("its %s value is not in float_value or double_value", dataTypeName(dt))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, "", outBad, plant.ReasonNotFinite, "its value is not a finite number (NaN or infinity)"
		}
		return f, "", outNumber, "", ""
	case pb.DataType_Boolean:
		x, ok := m.GetValue().(*pb.Payload_Metric_BooleanValue)
		if !ok {
			return bad("its Boolean value is not in boolean_value")
		}
		if x.BooleanValue {
			return 1, "", outNumber, "", ""
		}
		return 0, "", outNumber, "", ""
	default: // String, Text
		x, ok := m.GetValue().(*pb.Payload_Metric_StringValue)
		if !ok {
			return bad("its %s value is not in string_value", dataTypeName(dt))
		}
		s := x.StringValue
		switch {
		case s == "":
			return bad("its string is empty")
		case len(s) > maxWord:
			return bad("its string is %d bytes long; at most %d are stored as a word", len(s), maxWord)
		case !plant.ValidName(s):
			return bad("its string is not valid UTF-8 or holds a control character")
		}
		return 0, s, outWord, "", ""
	}
}

// intValue reads an integer of datatype dt from the bits of int_value or
// long_value (see convert). Which field carried it matters only for Int64,
// whose value in the 32-bit field is taken as a sign-extended int32.
func intValue(dt pb.DataType, bits uint64, m *pb.Payload_Metric) float64 {
	switch dt {
	case pb.DataType_Int8:
		return float64(int8(uint8(bits)))
	case pb.DataType_Int16:
		return float64(int16(uint16(bits)))
	case pb.DataType_Int32:
		return float64(int32(uint32(bits)))
	case pb.DataType_Int64:
		if _, ok := m.GetValue().(*pb.Payload_Metric_IntValue); ok {
			return float64(int32(uint32(bits)))
		}
		return float64(int64(bits))
	case pb.DataType_UInt8:
		return float64(uint8(bits))
	case pb.DataType_UInt16:
		return float64(uint16(bits))
	case pb.DataType_UInt32:
		return float64(uint32(bits))
	}
	return float64(bits) // UInt64
}

// stamp chooses a metric's reading time: its own timestamp, else the
// payload's, else the arrival time recvMS (then arrival is true). Sparkplug
// timestamps are UTC milliseconds since the epoch
// [tck-id-payloads_metric_timestamp_in_UTC]. A timestamp of 0 is taken as
// absent: some edge nodes send it for "unknown", and 1970 is no reading time.
// A historical metric is backfill and must state its own time: it is never
// stamped on arrival.
func stamp(m *pb.Payload_Metric, payloadTS uint64, recvMS int64, maxFuture time.Duration) (ts int64, arrival bool, reason, why string) {
	var raw uint64
	var whose string
	switch {
	case m.GetTimestamp() != 0:
		raw, whose = m.GetTimestamp(), "its timestamp"
	case payloadTS != 0:
		raw, whose = payloadTS, "the payload's timestamp"
	case m.GetIsHistorical():
		return 0, false, plant.ReasonBadTimestamp, "it is historical but neither it nor the payload has a timestamp"
	default:
		return recvMS, true, "", ""
	}
	if raw < uint64(minTS) || raw > uint64(maxTS) {
		return 0, false, plant.ReasonBadTimestamp,
			fmt.Sprintf("%s %d is not epoch milliseconds between 2000 and 2200", whose, raw)
	}
	ts = int64(raw)
	if ahead := time.Duration(ts-recvMS) * time.Millisecond; ahead > maxFuture {
		return 0, false, plant.ReasonFutureTimestamp,
			fmt.Sprintf("%s is %s ahead of the time the message arrived; at most %s is accepted (check the edge node's clock)",
				whose, ahead.Round(time.Second), maxFuture)
	}
	return ts, false, "", ""
}

// skippedName reports metrics that are part of the protocol, not of the
// machine: the bdSeq number [tck-id-payloads-nbirth-bdseq], the writable
// controls under "Node Control/" and "Device Control/" (commands such as
// Rebirth, Sparkplug 3.0, 6.4.2 Payload Metric Naming Convention), and
// "Properties/" descriptions. They are never stored and never rejected.
func skippedName(name string) bool {
	return name == bdSeqMetric ||
		strings.HasPrefix(name, "Node Control/") ||
		strings.HasPrefix(name, "Device Control/") ||
		strings.HasPrefix(name, "Properties/")
}

// bdSeqMetric is the name of the birth/death sequence metric
// [tck-id-payloads-nbirth-bdseq] [tck-id-payloads-ndeath-bdseq].
const bdSeqMetric = "bdSeq"

// bdSeqOf returns the bdSeq metric's value in a birth or death payload. It is
// an Int64 in long_value [tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq];
// int_value is accepted too.
func bdSeqOf(p *pb.Payload) (uint64, bool) {
	for _, m := range p.GetMetrics() {
		if m.GetName() != bdSeqMetric {
			continue
		}
		switch x := m.GetValue().(type) {
		case *pb.Payload_Metric_LongValue:
			return x.LongValue, true
		case *pb.Payload_Metric_IntValue:
			return uint64(x.IntValue), true
		}
	}
	return 0, false
}

// unitOf returns the engineering unit a birth states for a metric in its
// properties under the key "engUnit" (the convention of Ignition and the
// Tahu clients), when it is a short, clean string.
func unitOf(m *pb.Payload_Metric) string {
	ps := m.GetProperties()
	for i, k := range ps.GetKeys() {
		if !strings.EqualFold(k, "engUnit") || i >= len(ps.GetValues()) {
			continue
		}
		u, ok := ps.GetValues()[i].GetValue().(*pb.Payload_PropertyValue_StringValue)
		if ok && u.StringValue != "" && len(u.StringValue) <= maxUnitLen && plant.ValidName(u.StringValue) {
			return u.StringValue
		}
	}
	return ""
}
