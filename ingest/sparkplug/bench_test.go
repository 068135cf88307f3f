package sparkplug

import (
	"fmt"
	"os"
	"testing"

	pb "andon/ingest/sparkplug/sparkplugpb"
)

// BenchmarkHandleDData measures the common message: a DDATA of 10 metrics
// named by alias, against a born node and device. ANDON_BENCH_QUICK=1 (set
// by make test) runs it over a few messages only.
func BenchmarkHandleDData(b *testing.B) {
	h := New(Config{})
	h.Handle("spBv1.0/g/NBIRTH/e", encode(b, 0, t0, bdSeq(0)), t0)
	var births []*pb.Payload_Metric
	for i := range 10 {
		births = append(births, withDouble(metric(fmt.Sprint("metric-", i), int64(i), pb.DataType_Double), 0))
	}
	h.Handle("spBv1.0/g/DBIRTH/e/d", encode(b, 1, t0, births...), t0)
	n := 256
	if os.Getenv("ANDON_BENCH_QUICK") == "1" {
		n = 4
	}
	// Messages with consecutive seq numbers, so the benchmark measures the
	// normal path rather than gap bookkeeping.
	msgs := make([][]byte, n)
	for k := range msgs {
		var ms []*pb.Payload_Metric
		for i := range 10 {
			ms = append(ms, withDouble(withTS(metric("", int64(i), 0), t0+int64(k)), float64(k*i)))
		}
		msgs[k] = encode(b, int64(k+2)%256, t0+int64(k), ms...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs[0])))
	k := 0
	for b.Loop() {
		rs, rej, _ := h.Handle("spBv1.0/g/DDATA/e/d", msgs[k%n], t0+int64(k%n))
		if len(rs) != 10 || rej != nil {
			b.Fatalf("got %d readings and reject %v, want 10 and none", len(rs), rej)
		}
		k++
	}
}
