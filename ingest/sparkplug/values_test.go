package sparkplug

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "andon/ingest/sparkplug/sparkplugpb"
	"andon/plant"
)

func TestDatatypes(t *testing.T) {
	type set func(*pb.Payload_Metric) *pb.Payload_Metric
	i := func(v uint32) set { return func(m *pb.Payload_Metric) *pb.Payload_Metric { return withInt(m, v) } }
	l := func(v uint64) set { return func(m *pb.Payload_Metric) *pb.Payload_Metric { return withLong(m, v) } }
	f := func(v float32) set { return func(m *pb.Payload_Metric) *pb.Payload_Metric { return withFloat(m, v) } }
	d := func(v float64) set { return func(m *pb.Payload_Metric) *pb.Payload_Metric { return withDouble(m, v) } }
	b := func(v bool) set { return func(m *pb.Payload_Metric) *pb.Payload_Metric { return withBool(m, v) } }
	s := func(v string) set { return func(m *pb.Payload_Metric) *pb.Payload_Metric { return withString(m, v) } }
	null := func(m *pb.Payload_Metric) *pb.Payload_Metric { m.IsNull = proto.Bool(true); return m }
	none := func(m *pb.Payload_Metric) *pb.Payload_Metric { return m }
	// neg32 is how Sparkplug 3.0 sends a negative Int8/16/32: sign-extended into the uint32.
	neg32 := func(v int32) uint32 { return uint32(v) }

	tests := []struct {
		name       string
		dt         pb.DataType
		value      set
		wantValue  float64
		wantWord   string
		wantReason string // skipped with this reason; "" and no word or value check: see wantNone
		wantNone   bool   // nothing stored, nothing rejected (null)
	}{
		{"Int8 positive", pb.DataType_Int8, i(100), 100, "", "", false},
		{"Int8 negative, sign-extended", pb.DataType_Int8, i(neg32(-5)), -5, "", "", false},
		{"Int8 negative, 8 bits only", pb.DataType_Int8, i(0xFB), -5, "", "", false},
		{"Int8 minimum", pb.DataType_Int8, i(neg32(-128)), -128, "", "", false},
		{"Int16 negative", pb.DataType_Int16, i(neg32(-300)), -300, "", "", false},
		{"Int16 minimum", pb.DataType_Int16, i(0x8000), -32768, "", "", false},
		{"Int32 negative", pb.DataType_Int32, i(neg32(-70000)), -70000, "", "", false},
		{"Int32 minimum", pb.DataType_Int32, i(neg32(math.MinInt32)), math.MinInt32, "", "", false},
		{"Int32 in long_value", pb.DataType_Int32, l(uint64(math.MaxUint64 - 1)), -2, "", "", false},
		{"Int64 negative", pb.DataType_Int64, l(uint64(math.MaxUint64)), -1, "", "", false},
		{"Int64 large", pb.DataType_Int64, l(1 << 40), 1 << 40, "", "", false},
		{"Int64 in int_value", pb.DataType_Int64, i(neg32(-9)), -9, "", "", false},
		{"UInt8", pb.DataType_UInt8, i(200), 200, "", "", false},
		{"UInt16", pb.DataType_UInt16, i(65000), 65000, "", "", false},
		{"UInt32 above int32", pb.DataType_UInt32, i(4_000_000_000), 4_000_000_000, "", "", false},
		{"UInt32 in long_value", pb.DataType_UInt32, l(4_000_000_000), 4_000_000_000, "", "", false},
		{"UInt64 large", pb.DataType_UInt64, l(math.MaxUint64), math.MaxUint64, "", "", false},
		{"UInt64 above int64", pb.DataType_UInt64, l(1 << 63), 1 << 63, "", "", false},
		{"Float", pb.DataType_Float, f(1.5), 1.5, "", "", false},
		{"Float in double_value", pb.DataType_Float, d(2.25), 2.25, "", "", false},
		{"Double", pb.DataType_Double, d(-1e300), -1e300, "", "", false},
		{"Double NaN", pb.DataType_Double, d(math.NaN()), 0, "", plant.ReasonNotFinite, false},
		{"Float infinity", pb.DataType_Float, f(float32(math.Inf(1))), 0, "", plant.ReasonNotFinite, false},
		{"Boolean true", pb.DataType_Boolean, b(true), 1, "", "", false},
		{"Boolean false", pb.DataType_Boolean, b(false), 0, "", "", false},
		{"String as a word", pb.DataType_String, s("running"), 0, "running", "", false},
		{"Text as a word", pb.DataType_Text, s("Tür offen"), 0, "Tür offen", "", false},
		{"String of 64 bytes", pb.DataType_String, s(strings.Repeat("w", 64)), 0, strings.Repeat("w", 64), "", false},
		{"String too long", pb.DataType_String, s(strings.Repeat("w", 65)), 0, "", plant.ReasonNotANumber, false},
		{"String with a control character", pb.DataType_String, s("a\nb"), 0, "", plant.ReasonNotANumber, false},
		{"String not UTF-8", pb.DataType_String, s("a\xffb"), 0, "", plant.ReasonNotANumber, false},
		{"String empty", pb.DataType_String, s(""), 0, "", plant.ReasonNotANumber, false},
		{"null Double", pb.DataType_Double, null, 0, "", "", true},
		{"null String", pb.DataType_String, null, 0, "", "", true},
		{"no value", pb.DataType_Int32, none, 0, "", plant.ReasonNotANumber, false},
		{"Int32 sent as a string", pb.DataType_Int32, s("7"), 0, "", plant.ReasonNotANumber, false},
		{"Boolean sent as an int", pb.DataType_Boolean, i(1), 0, "", plant.ReasonNotANumber, false},
		{"Double sent as an int", pb.DataType_Double, i(1), 0, "", plant.ReasonNotANumber, false},
		{"no datatype", pb.DataType_Unknown, i(1), 0, "", plant.ReasonNotANumber, false},
		{"datatype out of the enum", pb.DataType(99), i(1), 0, "", plant.ReasonNotANumber, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{})
			// The birth defines the metric and carries a value; the data
			// message names it by alias alone, without a datatype.
			birth := tt.value(metric("m", 1, tt.dt))
			data := tt.value(metric("", 1, 0))
			for _, msg := range []struct {
				topic   string
				payload []byte
			}{
				{"spBv1.0/g/NBIRTH/e", encode(t, 0, t0, birth)},
				{"spBv1.0/g/NDATA/e", encode(t, 1, t0, data)},
			} {
				rs, rej := handle(t, h, msg.topic, msg.payload, t0)
				switch {
				case tt.wantNone:
					noReject(t, rej)
					if len(rs) != 0 {
						t.Errorf("%s: readings %+v, want none", msg.topic, rs)
					}
				case tt.wantReason != "":
					if len(rs) != 0 || rej == nil || rej.Reason != tt.wantReason || !strings.Contains(rej.Detail, `"m"`) {
						t.Errorf("%s: readings %+v, reject %+v; want none and a %s reject naming m", msg.topic, rs, rej, tt.wantReason)
					}
				default:
					noReject(t, rej)
					if len(rs) != 1 {
						t.Fatalf("%s: got %d readings, want 1", msg.topic, len(rs))
					}
					if rs[0].Value != tt.wantValue || rs[0].Word != tt.wantWord || rs[0].Metric != "m" {
						t.Errorf("%s: reading %+v, want value %v word %q", msg.topic, rs[0], tt.wantValue, tt.wantWord)
					}
				}
			}
		})
	}
}

func TestUnsupportedCounted(t *testing.T) {
	h := New(Config{})
	dataset := metric("Recipe", 1, pb.DataType_DataSet)
	dataset.Value = &pb.Payload_Metric_DatasetValue{DatasetValue: &pb.Payload_DataSet{NumOfColumns: proto.Uint64(1), Columns: []string{"c"}, Types: []uint32{3}}}
	bytesM := metric("Blob", 2, pb.DataType_Bytes)
	bytesM.Value = &pb.Payload_Metric_BytesValue{BytesValue: []byte{1, 2}}
	tmpl := metric("Motor", 3, pb.DataType_Template)
	tmpl.Value = &pb.Payload_Metric_TemplateValue{TemplateValue: &pb.Payload_Template{TemplateRef: proto.String("MotorType")}}
	rs, rej := handle(t, h, "spBv1.0/g/DBIRTH/e/d", encode(t, 1, t0), t0) // no birth of the node yet: not counted as unsupported
	if len(rs) != 0 || rej == nil {
		t.Fatalf("DBIRTH before NBIRTH: readings %+v, reject %+v", rs, rej)
	}
	handle(t, h, "spBv1.0/g/NBIRTH/e", encode(t, 0, t0), t0)
	rs, rej = handle(t, h, "spBv1.0/g/DBIRTH/e/d", encode(t, 1, t0,
		dataset, bytesM, tmpl,
		withLong(metric("When", 4, pb.DataType_DateTime), uint64(t0)),
		withString(metric("Id", 5, pb.DataType_UUID), "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
		withBool(metric("Flags", 6, pb.DataType_BooleanArray), true),
		withDouble(metric("Speed", 7, pb.DataType_Double), 12),
	), t0)
	noReject(t, rej)
	if len(rs) != 1 || rs[0].Metric != "Speed" {
		t.Errorf("readings %+v, want only Speed", rs)
	}
	// A data message with an unsupported metric is not rejected either, and
	// its alias is known (no rebirth).
	rs, rej = handle(t, h, "spBv1.0/g/DDATA/e/d", encode(t, 2, t0, withLong(metric("", 4, 0), uint64(t0)), withDouble(metric("", 7, 0), 13)), t0)
	noReject(t, rej)
	if len(rs) != 1 || rs[0].Value != 13 {
		t.Errorf("readings %+v, want Speed = 13", rs)
	}
	c := h.Counts()
	want := map[string]int64{"DataSet": 1, "Bytes": 1, "Template": 1, "DateTime": 2, "UUID": 1, "BooleanArray": 1}
	if c.Unsupported != 7 || len(c.UnsupportedByType) != len(want) {
		t.Fatalf("unsupported = %d by type %v, want 7 by type %v", c.Unsupported, c.UnsupportedByType, want)
	}
	for k, v := range want {
		if c.UnsupportedByType[k] != v {
			t.Errorf("unsupported %s = %d, want %d", k, c.UnsupportedByType[k], v)
		}
	}
	if c.UnknownAliases != 0 || c.RebirthRequests != 1 {
		t.Errorf("unknown aliases = %d, rebirth requests = %d; want 0 and 1 (the DBIRTH before the NBIRTH)", c.UnknownAliases, c.RebirthRequests)
	}
}
