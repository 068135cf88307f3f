package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"andon/plant"
)

// Message is one MQTT publish the plant wants sent.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// MachineSpec describes one simulated machine, for callers that want to seed
// the asset tree (for example with ideal cycle times) before readings arrive.
type MachineSpec struct {
	Path       plant.Path
	Kind       string
	IdealCycle time.Duration
}

// Time constants of the model. They are chosen so that a viewer sees a state
// change somewhere in a 10-machine plant every minute or two, and OEE lands
// in the 60–85 % band real discrete plants report.
const (
	// stateResend is how often a state word is repeated without a change, so
	// a dashboard that starts late, or lost a message, catches up quickly.
	stateResend = 10 * time.Second

	// unitResend is how often each gauge is also sent on its own topic with
	// its unit: the multi-metric object has no place for units, and a plant
	// manager should see "64.2 °C", not "64.2".
	unitResend = 5 * time.Minute

	// maxGap bounds the time one Step simulates. A longer gap (a laptop
	// asleep, a stopped process) is treated as if the plant paused, so Step
	// never loops for long and never floods the broker with a day of parts.
	maxGap = time.Hour

	// maxEvents bounds the events one machine handles in one Step. With
	// maxGap of an hour and cycles of several seconds it is never reached; it
	// is the guarantee that Step terminates whatever the parameters.
	maxEvents = 100_000

	// Stops per hour of running time, by cause. They compete: the first to
	// happen ends the running spell.
	microStopsPerHour  = 3.0
	starvedPerHour     = 1.5
	breakdownsPerHour  = 0.7
	changeoversPerHour = 0.15

	warmTau = 8 * time.Minute  // how fast a running machine heats up
	coolTau = 15 * time.Minute // how fast a stopped one cools down
)

// kind is a family of machines with its own rhythm and physics.
type kind struct {
	cycleLo, cycleHi float64 // ideal cycle time range, s
	rpmLo, rpmHi     float64 // spindle (or drive) speed range when running
	runKW, idleKW    float64
	runTemp          float64 // °C a machine settles at while running
}

// kindNamed returns the parameters of a kind of machine. It is a function, not
// a package-level map, so nothing can modify the table at run time.
func kindNamed(name string) kind {
	switch name {
	case "press":
		return kind{8, 12, 1200, 1800, 18, 3.5, 55}
	case "cnc":
		return kind{30, 45, 6000, 8000, 14, 2.5, 50}
	case "weld":
		return kind{20, 30, 1500, 2500, 16, 1.8, 66}
	case "inspect":
		return kind{12, 18, 1200, 1500, 2.2, 0.8, 45}
	default:
		return kind{10, 15, 1300, 1800, 5.5, 1.2, 47}
	}
}

// lineKinds is the kind of each position on a line. Odd and even lines
// differ so the two default lines look like different product flows rather
// than copies of each other.
func lineKinds(line int) [MachinesPerLine]string {
	if line%2 == 0 {
		return [MachinesPerLine]string{"press", "cnc", "cnc", "weld", "pack"}
	}
	return [MachinesPerLine]string{"press", "cnc", "weld", "inspect", "pack"}
}

// Plant is the simulated plant. It is not safe for concurrent use: one
// goroutine steps it.
type Plant struct {
	period   time.Duration // between metric publishes of one machine
	last     time.Time     // the time the model has been advanced to
	machines []*machine
}

type machine struct {
	spec    MachineSpec
	topic   string // the machine's own topic, for the JSON of several metrics
	rng     *rand.Rand
	k       kind
	ideal   float64 // s
	scrapP  float64
	rpm     float64 // nominal when running
	runTemp float64
	ambient float64
	wear    float64 // multiplies the rate of breakdowns and micro-stops

	state     plant.State
	until     time.Time     // when the current running spell or stop ends
	nextPart  time.Time     // running: when the part in work completes
	remaining time.Duration // stopped: what was left of the interrupted cycle
	cycle     float64       // s, duration of the part in work
	lastCycle float64       // s, duration of the last completed part
	startup   int           // parts left with start-up scrap after a changeover
	good      int64
	scrap     int64
	temp      float64
	tempAt    time.Time

	sentState   plant.State
	unitsSentAt time.Time
	gauges      [len(gaugeUnits)]float64 // the gauges' values as last published
	stateSentAt time.Time
	nextMetrics time.Time
}

// NewPlant builds the plant as it stands at start. With a zero Seed the seed
// is derived from start, which keeps the model free of clocks of its own.
func NewPlant(cfg Config, start time.Time) *Plant {
	cfg = cfg.withDefaults()
	seed := uint64(cfg.Seed)
	if cfg.Seed == 0 {
		seed = uint64(start.UnixNano())
	}
	p := &Plant{
		period: time.Duration(float64(time.Second) / cfg.Rate),
		last:   start,
	}
	if p.period < time.Millisecond {
		p.period = time.Millisecond
	}

	counts := map[string]int{}
	for i := range cfg.Machines {
		line := i / MachinesPerLine
		kn := lineKinds(line)[i%MachinesPerLine]
		counts[kn]++
		k := kindNamed(kn)
		rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
		path := plant.Path{
			Site:    cfg.Site,
			Area:    cfg.Area,
			Line:    fmt.Sprintf("line-%d", line+1),
			Machine: fmt.Sprintf("%s-%02d", kn, counts[kn]),
		}
		// Ideal cycle times are round numbers, as engineers set them.
		ideal := math.Round(uniform(rng, k.cycleLo, k.cycleHi)*2) / 2
		m := &machine{
			spec:    MachineSpec{Path: path, Kind: kn, IdealCycle: seconds(ideal)},
			topic:   path.String(),
			rng:     rng,
			k:       k,
			ideal:   ideal,
			scrapP:  uniform(rng, 0.02, 0.04),
			rpm:     math.Round(uniform(rng, k.rpmLo, k.rpmHi)/50) * 50,
			runTemp: k.runTemp + uniform(rng, -3, 3),
			ambient: uniform(rng, 21, 25),
			// Some machines are older than others: the spread gives the
			// downtime Pareto a believable worst offender.
			wear:   uniform(rng, 0.6, 1.6),
			tempAt: start,
		}
		m.lastCycle = ideal
		// The counters start where a day at about 75 % of the ideal rate
		// would have them by the start time, as they are when one walks into
		// a plant, rather than at zero. Taken from the time of day, so a
		// simulator restarted the same day goes on from about where it was
		// instead of jumping (which a report would read as parts made).
		y, mo, d := start.Date()
		sinceMidnight := start.Sub(time.Date(y, mo, d, 0, 0, 0, 0, start.Location())).Seconds()
		made := int64(sinceMidnight * 0.75 / ideal)
		m.scrap = int64(float64(made) * m.scrapP)
		m.good = made - m.scrap
		p.machines = append(p.machines, m)
	}
	p.seedStates(rand.New(rand.NewPCG(seed, 0)), start)
	return p
}

// seedStates puts about 3 in 10 machines in a stop at start (down, idle,
// changeover in turn, on shuffled machines) so the overview is colourful from
// the first second, and part-way through it, as a plant is when one walks in.
func (p *Plant) seedStates(rng *rand.Rand, start time.Time) {
	n := len(p.machines)
	stopped := n * 3 / 10
	if stopped == 0 && n >= 2 {
		stopped = 1
	}
	order := rng.Perm(n)
	for j, i := range order {
		m := p.machines[i]
		var warm float64 // fraction of the way from ambient to running temperature
		if j < stopped {
			switch j % 3 {
			case 0:
				m.state, m.until = plant.Down, start.Add(seconds(uniform(m.rng, 120, 360)))
				warm = uniform(m.rng, 0.6, 0.9)
			case 1:
				m.state, m.until = plant.Idle, start.Add(seconds(uniform(m.rng, 40, 150)))
				warm = uniform(m.rng, 0.7, 0.95)
			default:
				m.state, m.until = plant.Changeover, start.Add(seconds(uniform(m.rng, 300, 900)))
				warm = uniform(m.rng, 0.1, 0.4)
			}
			m.cycle = m.drawCycle()
			m.remaining = seconds(m.cycle * m.rng.Float64())
		} else {
			m.startRunning(start)
			m.nextPart = start.Add(seconds(m.cycle * m.rng.Float64()))
			warm = uniform(m.rng, 0.9, 1)
		}
		m.temp = m.ambient + (m.runTemp-m.ambient)*warm
		m.nextMetrics = start
	}
}

// Machines lists the simulated machines in publishing order.
func (p *Plant) Machines() []MachineSpec {
	out := make([]MachineSpec, len(p.machines))
	for i, m := range p.machines {
		out[i] = m.spec
	}
	return out
}

// Step advances the model to now and returns what to publish: state words on
// every change and every 10 s, and each machine's metrics at the configured
// rate. A now before the last step returns nothing, so timestamps never go
// backwards; a gap longer than maxGap is simulated as its last maxGap.
func (p *Plant) Step(now time.Time) []Message {
	if now.Before(p.last) {
		return nil
	}
	if gap := now.Sub(p.last); gap > maxGap {
		for _, m := range p.machines {
			m.shift(gap - maxGap)
		}
	}
	p.last = now

	var out []Message
	for _, m := range p.machines {
		m.advance(now)
		if m.state != m.sentState || now.Sub(m.stateSentAt) >= stateResend {
			m.sentState, m.stateSentAt = m.state, now
			out = append(out, Message{Topic: m.topic + "/state", Payload: []byte(m.state), QoS: 1})
		}
		if !now.Before(m.nextMetrics) {
			m.nextMetrics = m.nextMetrics.Add(p.period)
			if !m.nextMetrics.After(now) {
				m.nextMetrics = now.Add(p.period)
			}
			// Counters and gauges travel together, so the whole object is QoS1:
			// a lost counter reading would show as a dip in output.
			out = append(out, Message{Topic: m.topic, Payload: m.metrics(now), QoS: 1})
			if m.unitsSentAt.IsZero() || now.Sub(m.unitsSentAt) >= unitResend {
				m.unitsSentAt = now
				out = append(out, m.units(now)...)
			}
		}
	}
	return out
}

// shift moves the machine's pending events later by d, as if it had been
// paused for that long.
func (m *machine) shift(d time.Duration) {
	m.until = m.until.Add(d)
	m.nextPart = m.nextPart.Add(d)
	m.tempAt = m.tempAt.Add(d)
}

// advance handles the machine's events up to and including to, in time order.
func (m *machine) advance(to time.Time) {
	for range maxEvents {
		switch {
		case m.state == plant.Running && !m.nextPart.After(to) && !m.nextPart.After(m.until):
			m.thermal(m.nextPart)
			m.completePart(m.nextPart)
		case !m.until.After(to):
			m.thermal(m.until)
			if m.state == plant.Running {
				m.stop(m.until)
			} else {
				m.resume(m.until)
			}
		default:
			m.thermal(to)
			return
		}
	}
	m.thermal(to)
}

// drawCycle is the duration of one part: never faster than ideal, usually a
// little slower, now and then a fumble.
func (m *machine) drawCycle() float64 {
	return m.ideal * (1.02 + math.Abs(m.rng.NormFloat64())*0.06)
}

// startRunning begins a running spell at t, drawing when it will end.
func (m *machine) startRunning(t time.Time) {
	m.state = plant.Running
	m.until = t.Add(seconds(m.rng.ExpFloat64() / m.stopsPerHour() * 3600))
	if m.cycle == 0 {
		m.cycle = m.drawCycle()
	}
}

func (m *machine) completePart(t time.Time) {
	p := m.scrapP
	if m.startup > 0 {
		// The first parts after a changeover are often scrap while the
		// setter dials the new job in.
		p = 0.3
		m.startup--
	}
	if m.rng.Float64() < p {
		m.scrap++
	} else {
		m.good++
	}
	m.lastCycle = m.cycle
	m.cycle = m.drawCycle()
	m.nextPart = t.Add(seconds(m.cycle))
}

// stopsPerHour is the machine's rate of stops of any cause per running hour.
func (m *machine) stopsPerHour() float64 {
	return (microStopsPerHour+breakdownsPerHour)*m.wear + starvedPerHour + changeoversPerHour
}

// stop ends a running spell at t with a cause drawn in proportion to its rate.
func (m *machine) stop(t time.Time) {
	m.remaining = m.nextPart.Sub(t)
	micro, broken := microStopsPerHour*m.wear, breakdownsPerHour*m.wear
	r := m.rng.Float64() * m.stopsPerHour()
	var d float64 // s
	switch {
	case r < micro:
		// A jam or a sensor fault cleared by the operator: under the 2 min
		// micro-stop threshold, so it counts against performance.
		m.state, d = plant.Down, uniform(m.rng, 15, 100)
	case r < micro+starvedPerHour:
		// Starved of parts upstream or blocked downstream.
		m.state, d = plant.Idle, uniform(m.rng, 20, 180)
	case r < micro+starvedPerHour+broken:
		m.state = plant.Down
		if m.rng.Float64() < 0.1 {
			d = uniform(m.rng, 15*60, 30*60) // waiting for maintenance
		} else {
			d = 120 + m.rng.ExpFloat64()*120 // mean 4 min
		}
	default:
		m.state, d = plant.Changeover, uniform(m.rng, 10*60, 25*60)
	}
	m.until = t.Add(seconds(d))
}

// resume ends a stop at t and carries on with the interrupted part.
func (m *machine) resume(t time.Time) {
	if m.state == plant.Changeover {
		m.startup = 3
		m.cycle = m.drawCycle()
		m.remaining = seconds(m.cycle)
	}
	m.startRunning(t)
	if m.remaining <= 0 {
		m.remaining = seconds(m.cycle)
	}
	m.nextPart = t.Add(m.remaining)
	m.remaining = 0
}

// thermal moves the temperature towards where the current state drives it:
// the running temperature, or a little above ambient when stopped.
func (m *machine) thermal(t time.Time) {
	dt := t.Sub(m.tempAt)
	if dt <= 0 {
		return
	}
	target, tau := m.ambient+2, coolTau
	if m.state == plant.Running {
		target, tau = m.runTemp, warmTau
	}
	m.temp += (target - m.temp) * (1 - math.Exp(-float64(dt)/float64(tau)))
	m.tempAt = t
}

// metrics renders the machine's readings at now, with sensor noise, as the
// multi-metric JSON a gateway publishes to the machine topic. The object holds
// numbers only, so it is written directly; the keys are fixed here and no
// device text goes into it.
func (m *machine) metrics(now time.Time) []byte {
	temp := m.temp + m.rng.NormFloat64()*0.15
	var rpm, kw float64
	switch m.state {
	case plant.Running:
		rpm = math.Round(m.rpm * (1 + m.rng.NormFloat64()*0.01))
		kw = m.k.runKW * (1 + m.rng.NormFloat64()*0.04)
	case plant.Changeover:
		// Tooling, lights and the setter's hand tools.
		kw = m.k.idleKW * 1.3 * (1 + m.rng.NormFloat64()*0.05)
	case plant.Down:
		kw = m.k.idleKW * 0.8 * (1 + m.rng.NormFloat64()*0.05)
	default:
		kw = m.k.idleKW * (1 + m.rng.NormFloat64()*0.05)
	}
	m.gauges = [len(gaugeUnits)]float64{m.lastCycle, temp, math.Max(rpm, 0), math.Max(kw, 0)}
	b := make([]byte, 0, 160)
	b = append(b, `{"timestamp_ms":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, `,"good":`...)
	b = strconv.AppendInt(b, m.good, 10)
	b = append(b, `,"scrap":`...)
	b = strconv.AppendInt(b, m.scrap, 10)
	b = append(b, `,"cycle_time":`...)
	b = strconv.AppendFloat(b, m.gauges[0], 'f', gaugeUnits[0].prec, 64)
	b = append(b, `,"temperature":`...)
	b = strconv.AppendFloat(b, m.gauges[1], 'f', gaugeUnits[1].prec, 64)
	b = append(b, `,"spindle_speed":`...)
	b = strconv.AppendFloat(b, m.gauges[2], 'f', gaugeUnits[2].prec, 64)
	b = append(b, `,"power":`...)
	b = strconv.AppendFloat(b, m.gauges[3], 'f', gaugeUnits[3].prec, 64)
	return append(b, '}')
}

func uniform(rng *rand.Rand, lo, hi float64) float64 {
	return lo + rng.Float64()*(hi-lo)
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

// gaugeUnits are the units of the gauges, in the order of machine.gauges.
// prec is the decimals each is published with, the same in both shapes.
var gaugeUnits = [...]struct {
	metric, unit string
	prec         int
}{
	{"cycle_time", "s", 1}, {"temperature", "°C", 1}, {"spindle_speed", "rpm", 0}, {"power", "kW", 2},
}

// units repeats the gauges just published, one per topic in the
// {"value", "ts", "unit"} shape, so the tags learn their units. Same time and
// value as in the object: the store keeps one reading.
func (m *machine) units(now time.Time) []Message {
	out := make([]Message, 0, len(gaugeUnits))
	for i, g := range gaugeUnits {
		b := []byte(`{"value":`)
		b = strconv.AppendFloat(b, m.gauges[i], 'f', g.prec, 64)
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, now.UnixMilli(), 10)
		b = append(b, `,"unit":`...)
		b = strconv.AppendQuote(b, g.unit)
		out = append(out, Message{Topic: m.topic + "/" + g.metric, Payload: append(b, '}'), QoS: 1})
	}
	return out
}

// Backfill is Step for the past: every message carries its own time, so a
// broker can take it now and the store puts it where it belongs. State words,
// bare in Step, become {"value": word, "ts": ms}.
func (p *Plant) Backfill(at time.Time) []Message {
	msgs := p.Step(at)
	for i, m := range msgs {
		if !strings.HasSuffix(m.Topic, "/state") {
			continue
		}
		b := []byte(`{"value":`)
		b = strconv.AppendQuote(b, string(m.Payload))
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, at.UnixMilli(), 10)
		msgs[i].Payload = append(b, '}')
	}
	return msgs
}
