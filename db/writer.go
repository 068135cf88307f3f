package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"andon/plant"
)

// WriterConfig configures NewWriter. Zero values take the defaults.
type WriterConfig struct {
	QueueReadings int                   // bound on readings queued and not yet committed (default 200_000)
	MaxBatch      int                   // readings per transaction at most (default 20_000)
	MaxTags       int                   // cap on the number of tags; readings for new tags beyond it are rejected (default 50_000)
	MaxRejects    int                   // rows kept in rejects (default 1000)
	Registerer    prometheus.Registerer // nil = don't register
	Logger        *slog.Logger          // nil = discard
	// OnCommit is called on the writer goroutine after each commit with the
	// rows actually inserted (not ignored duplicates) and whether the
	// transaction created tags. It must not block; nil is fine. A commit
	// that inserted nothing and created no tag (only duplicates or rejects)
	// is not reported.
	OnCommit func(rs []plant.Stored, newTags bool)
	Now      func() time.Time // default time.Now; used for created_ms and reject times
	// Hook, if not nil, derives rows (state spans, stops) from the readings
	// inside the same transaction, so derived rows and readings commit or
	// fail together.
	Hook BatchHook
	// TickEvery is how often Hook.Tick runs (default 1 s); unused without
	// a Hook.
	TickEvery time.Duration
}

// BatchHook derives rows from committed readings inside the writer's
// transaction. All its methods are called on the writer goroutine, one at a
// time, so an implementation needs no locking for the writer's sake.
type BatchHook interface {
	// Apply runs in the batch's transaction, after its readings are
	// inserted, with the rows actually inserted (the slice OnCommit gets).
	// It is called only for batches that inserted readings. An error fails
	// the batch like any write error.
	Apply(ctx context.Context, tx *sql.Tx, rs []plant.Stored, nowMS int64) error
	// Tick runs about every TickEvery in a transaction of its own, so time
	// alone (a machine falling silent) can change derived rows.
	Tick(ctx context.Context, tx *sql.Tx, nowMS int64) error
	// Commit says the transaction of the last Apply or Tick committed: keep
	// the in-memory changes made since the previous Commit.
	Commit()
	// Rollback says it failed: forget the in-memory changes made since the
	// last Commit, because the rows they describe do not exist.
	Rollback()
}

const (
	defaultQueueReadings = 200_000
	defaultMaxBatch      = 20_000
	defaultMaxTags       = 50_000
	defaultMaxRejects    = 1000
	defaultTickEvery     = time.Second

	// maxPendingRejects bounds the rejects waiting for the next transaction,
	// so a flood of bad messages costs counters, not memory.
	maxPendingRejects = 1000
	// maxRejectPayload is how much of a rejected payload is kept.
	maxRejectPayload = 256
	// maxWordCache bounds the word-id cache; devices may send arbitrary
	// words, and a cleared cache only costs a lookup per word.
	maxWordCache = 100_000
	// maxRefused bounds the set of tags refused for the tag limit.
	maxRefused = 10_000
	// refusedRecheck is how often the tag limit is re-read from the table,
	// so tags deleted by an admin make room again without a restart.
	refusedRecheck = time.Minute
)

// Writer is the single owner of the write connection. Producers queue
// readings with Write, Enqueue or TryEnqueue; Run commits everything queued in
// one transaction at a time (group commit), so a lone client waits for one
// commit and many clients share one.
type Writer struct {
	s       *Store
	cfg     WriterConfig
	log     *slog.Logger
	m       *writerMetrics
	sem     *semaphore.Weighted // counts queued readings; bounds memory
	kick    chan struct{}       // wakes Run; capacity 1
	closing context.Context     // cancelled when Run stops accepting
	close   context.CancelFunc
	running atomic.Bool
	queued  atomic.Int64 // readings queued, for the gauge
	commits atomic.Int64 // transactions committed, for tests

	jobs chan job // maintenance steps (Do), run between batches
	// noRollups skips the rollups: only BenchmarkWriter sets it, to
	// measure what they cost.
	noRollups bool
	// busy tells whether more readings wait behind the current batch, so
	// its rollups may be held in memory; tests replace it, and set
	// holdRollups to keep held rollups unwritten (as a crash would).
	busy        func() bool
	holdRollups bool
	rollFlushes atomic.Int64 // rollup writes, for tests

	// failing is the error of the last write transaction while writes fail
	// (a full disk, a broken file), nil once one commits; failSince is when
	// the failing began.
	failMu    sync.Mutex
	failing   error
	failSince time.Time

	mu      sync.Mutex
	closed  bool
	queue   []*item
	rejects []plant.Reject

	// The fields below are touched only by the Run goroutine.
	roll       rollupBuffer
	machines   map[plant.Path]int64
	tags       map[tagKey]tagInfo
	words      map[string]int64
	refused    map[tagKey]struct{}
	arrivals   map[int64]int64 // tag id -> the newest arrival-stamped ts given out
	refusedAt  time.Time
	tagCount   int
	tagCounted bool
	// offline holds the machines whose device announced it left (machine
	// id -> assets.offline_ms), read from the store before the first batch
	// and again after a failed one.
	offline       map[int64]int64
	offlineLoaded bool
}

// item is one Enqueue call. Its readings may be split across transactions
// when they exceed MaxBatch; done is called once, after its last part.
type item struct {
	rs     []plant.Reading
	done   func(error)
	weight int64 // semaphore units held until done
	next   int   // index of the first reading not yet taken into a batch
	err    error // first error of any of its parts
	// stream marks readings nobody reads back at once (QoS 0, and QoS 1
	// whose PUBACK follows the commit): a batch of only these may hold its
	// rollups in memory. Write's caller may read right after, so its
	// batch writes every held rollup.
	stream bool
}

type part struct {
	it     *item
	lo, hi int
}

type tagKey struct {
	path   plant.Path
	metric string
}

type tagInfo struct {
	id, machineID int64
	unit          string
}

// NewWriter makes a writer for s. Nothing is written until Run is called,
// but readings may be queued before that.
func NewWriter(s *Store, cfg WriterConfig) *Writer {
	if cfg.QueueReadings <= 0 {
		cfg.QueueReadings = defaultQueueReadings
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.MaxTags <= 0 {
		cfg.MaxTags = defaultMaxTags
	}
	if cfg.MaxRejects <= 0 {
		cfg.MaxRejects = defaultMaxRejects
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = defaultTickEvery
	}
	closing, cancel := context.WithCancel(context.Background())
	w := &Writer{
		s:        s,
		cfg:      cfg,
		log:      cfg.Logger,
		sem:      semaphore.NewWeighted(int64(cfg.QueueReadings)),
		kick:     make(chan struct{}, 1),
		jobs:     make(chan job),
		closing:  closing,
		close:    cancel,
		machines: make(map[plant.Path]int64),
		tags:     make(map[tagKey]tagInfo),
		words:    make(map[string]int64),
		refused:  make(map[tagKey]struct{}),
		arrivals: make(map[int64]int64),
	}
	w.m = newWriterMetrics(cfg.Registerer, func() float64 { return float64(w.queued.Load()) })
	w.busy = w.queueBusy
	return w
}

// weight is how many semaphore units a call holds. A call larger than the
// whole queue takes all of it rather than waiting forever.
func (w *Writer) weight(n int) int64 {
	return int64(min(n, w.cfg.QueueReadings))
}

// Write queues rs and waits until they are committed (the QoS 1 path). It
// returns the commit's error, ErrClosed once the writer has stopped, or the
// context's error if ctx ends first (the readings may still be committed).
func (w *Writer) Write(ctx context.Context, rs []plant.Reading) error {
	ch := make(chan error, 1)
	if err := w.enqueue(ctx, rs, func(err error) { ch <- err }, false); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Enqueue queues rs, blocking while the queue is full (backpressure) until
// ctx is done or the writer stops. done, if not nil, is called with the
// commit's result on the writer goroutine and must not block. The caller
// must not modify rs until done is called. If Enqueue returns an error, done
// is not called.
func (w *Writer) Enqueue(ctx context.Context, rs []plant.Reading, done func(error)) error {
	return w.enqueue(ctx, rs, done, true)
}

func (w *Writer) enqueue(ctx context.Context, rs []plant.Reading, done func(error), stream bool) error {
	if len(rs) == 0 {
		if w.isClosed() {
			return ErrClosed
		}
		if done != nil {
			done(nil)
		}
		return nil
	}
	n := w.weight(len(rs))
	if !w.sem.TryAcquire(n) {
		// Slow path: wait for room, but give up when the writer stops, so
		// that no caller hangs on a writer that will never drain.
		actx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(w.closing, cancel)
		err := w.sem.Acquire(actx, n)
		stop()
		cancel()
		if err != nil {
			if w.closing.Err() != nil && ctx.Err() == nil {
				return ErrClosed
			}
			return fmt.Errorf("db: enqueue: %w", err)
		}
	}
	if !w.push(&item{rs: rs, done: done, weight: n, stream: stream}) {
		w.sem.Release(n)
		return ErrClosed
	}
	return nil
}

// TryEnqueue queues rs if there is room and never blocks (the QoS 0 path).
// It returns false, counting the readings as dropped, when the queue is full
// or the writer has stopped. The caller must not modify rs afterwards.
func (w *Writer) TryEnqueue(rs []plant.Reading) bool {
	if len(rs) == 0 {
		return !w.isClosed()
	}
	n := w.weight(len(rs))
	if !w.sem.TryAcquire(n) {
		w.m.dropped.Add(float64(len(rs)))
		return false
	}
	if !w.push(&item{rs: rs, weight: n, stream: true}) {
		w.sem.Release(n)
		w.m.dropped.Add(float64(len(rs)))
		return false
	}
	return true
}

// Reject records a message that could not be turned into readings. It never
// blocks: it counts the reason and stores the row in the next transaction,
// unless too many are already pending, in which case only the count remains.
func (w *Writer) Reject(r plant.Reject) {
	w.m.rejected.WithLabelValues(r.Reason).Inc()
	r.Payload = clipPayload(r.Payload)
	w.mu.Lock()
	keep := !w.closed && len(w.rejects) < maxPendingRejects
	if keep {
		w.rejects = append(w.rejects, r)
	}
	w.mu.Unlock()
	if keep {
		w.wake()
	}
}

// clipPayload copies at most maxRejectPayload bytes, so the row neither pins
// a broker's buffer nor grows with the message.
func clipPayload(p []byte) []byte {
	if p == nil {
		return nil
	}
	return append([]byte(nil), p[:min(len(p), maxRejectPayload)]...)
}

func (w *Writer) push(it *item) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, it)
	w.mu.Unlock()
	w.queued.Add(int64(len(it.rs)))
	w.wake()
	return true
}

func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Writer) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// Run owns the write connection until ctx is done: it takes everything
// queued (up to MaxBatch readings), writes it in one transaction, reports
// the result to each caller and then to OnCommit, and starts again. When ctx
// is done it stops accepting, commits what is queued, and returns nil.
func (w *Writer) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("db: writer: Run called twice")
	}
	defer w.stopAccepting()
	// Writes use a context that outlives ctx: what was accepted must still
	// be committed during shutdown.
	wctx := context.WithoutCancel(ctx)
	st, err := w.prepare(wctx)
	if err != nil {
		w.stopAccepting()
		w.drainFailed(err)
		return err
	}
	defer st.close()
	if err := w.recoverRollups(wctx); err != nil {
		w.stopAccepting()
		w.drainFailed(err)
		return err
	}

	// Without a hook the tick channel stays nil and never fires.
	var tick <-chan time.Time
	if w.cfg.Hook != nil {
		t := time.NewTicker(w.cfg.TickEvery)
		defer t.Stop()
		tick = t.C
	}

	var idle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			w.stopAccepting()
			for w.commitNext(wctx, st) {
			}
			w.flushRollups(wctx, st)
			return nil
		case <-idle:
			idle = nil
			w.flushRollups(wctx, st)
			continue
		case <-tick:
			w.tick(wctx)
			continue
		case j := <-w.jobs:
			// Maintenance (retention, the backfill) sees every rollup.
			w.flushRollups(wctx, st)
			j.done <- w.inTx(wctx, "step", j.fn)
			continue
		case <-w.kick:
		}
		// Let producers that are ready to run add to this batch first. A
		// woken goroutine runs next on its P, so without this yield, with
		// one P (or a busy machine), the writer would commit each reading
		// alone as soon as it arrives and group commit would not happen.
		runtime.Gosched()
		for w.commitNext(wctx, st) {
			if ctx.Err() != nil {
				break
			}
		}
		// Out of work: what was held in memory is written once no more
		// comes for rollupIdle (a QoS 1 device sends its next publishes
		// only after the PUBACKs of this batch).
		if !w.roll.empty() || w.roll.pending {
			idle = time.After(rollupIdle)
		}
	}
}

// queueBusy tells whether readings are waiting to be taken.
func (w *Writer) queueBusy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) > 0
}

// Failing returns the error of the last write transaction, and since when
// writes have been failing, while they fail; a nil error once a batch
// commits again. Health checks and pages use it to say what is wrong.
func (w *Writer) Failing() (since time.Time, err error) {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	return w.failSince, w.failing
}

func (w *Writer) setFailing(err error) {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	switch {
	case err == nil && w.failing != nil:
		w.log.Info("db writes work again", "after", time.Since(w.failSince).Round(time.Millisecond))
		w.failing, w.failSince = nil, time.Time{}
	case err != nil:
		if w.failing == nil {
			w.failSince = time.Now()
		}
		w.failing = err
	}
}

// stopAccepting makes every later Enqueue fail with ErrClosed and wakes
// callers blocked on a full queue.
func (w *Writer) stopAccepting() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.close()
}

// drainFailed fails everything queued with err; used when Run cannot start.
func (w *Writer) drainFailed(err error) {
	for {
		parts, _, n := w.take()
		if n == 0 && len(parts) == 0 {
			return
		}
		w.finish(parts, err)
	}
}

// take removes up to MaxBatch readings, and all pending rejects, from the
// queue.
func (w *Writer) take() (parts []part, rejects []plant.Reject, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.queue) > 0 && n < w.cfg.MaxBatch {
		it := w.queue[0]
		hi := min(len(it.rs), it.next+w.cfg.MaxBatch-n)
		parts = append(parts, part{it: it, lo: it.next, hi: hi})
		n += hi - it.next
		it.next = hi
		if it.next == len(it.rs) {
			w.queue[0] = nil
			w.queue = w.queue[1:]
		}
	}
	if len(w.queue) == 0 {
		w.queue = nil // let the backing array go after a burst
	}
	rejects = w.rejects
	w.rejects = nil
	return parts, rejects, n
}

// finish reports a batch's result to the callers whose last part it held
// and frees their queue room.
func (w *Writer) finish(parts []part, err error) {
	for _, p := range parts {
		it := p.it
		w.queued.Add(-int64(p.hi - p.lo))
		if err != nil && it.err == nil {
			it.err = err
		}
		if p.hi < len(it.rs) {
			continue
		}
		w.sem.Release(it.weight)
		if it.done != nil {
			it.done(it.err)
		}
	}
}

// commitNext writes one batch; it returns false when there was nothing to do.
func (w *Writer) commitNext(ctx context.Context, st *stmts) bool {
	parts, rejects, n := w.take()
	if len(parts) == 0 && len(rejects) == 0 {
		return false
	}
	start := time.Now()
	b := &batch{}
	err := w.writeBatch(ctx, st, parts, rejects, b)
	if err != nil {
		w.forget(b)
		if b.hooked {
			w.cfg.Hook.Rollback()
		}
		w.m.writeError.Inc()
		w.log.Error("db write failed", "readings", n, "err", err)
		w.setFailing(err)
		w.finish(parts, err)
		return true
	}
	w.setFailing(nil)
	if w.roll.commit(b.roll, w.cfg.Now()) {
		w.rollFlushes.Add(1)
	}
	if b.hooked {
		w.cfg.Hook.Commit()
	}
	w.commits.Add(1)
	w.m.commit.Observe(time.Since(start).Seconds())
	w.m.batch.Observe(float64(n))
	w.m.ingested.Add(float64(len(b.stored) - len(b.left)))
	w.m.duplicate.Add(float64(b.duplicates))
	for reason, c := range b.rejected {
		w.m.rejected.WithLabelValues(reason).Add(float64(c))
	}
	// OnCommit before the callers hear of the commit: when Write returns,
	// the pages have been told (the hub only records what changed).
	if w.cfg.OnCommit != nil && (len(b.stored) > 0 || b.newTags) {
		w.cfg.OnCommit(b.stored, b.newTags)
	}
	w.finish(parts, nil)
	return true
}

// batch collects what one transaction did, to report it after the commit
// or undo the caches after a rollback.
type batch struct {
	stored     []plant.Stored
	left       []plant.Stored // machines whose device announced it left
	duplicates int
	newTags    bool
	rejected   map[string]int // readings refused inside the transaction, by reason
	rejects    []plant.Reject // rows to insert with the batch
	last       map[int64]lastValue

	// Cache entries added in this transaction, dropped again if it fails.
	cachedMachines []plant.Path
	cachedTags     []tagKey
	cachedWords    []string
	createdTags    int

	hooked bool // Hook.Apply was called, so Commit or Rollback is owed

	roll rollupStage // applied to the rollup buffer after the commit
}

type lastValue struct {
	ts    int64
	value float64
}

func (b *batch) refuse(r plant.Reading, reason, detail string, now int64, row bool) {
	if b.rejected == nil {
		b.rejected = make(map[string]int)
	}
	b.rejected[reason]++
	if row && len(b.rejects) < maxPendingRejects*2 {
		b.rejects = append(b.rejects, plant.Reject{TS: now, Topic: r.Topic, Reason: reason, Detail: detail})
	}
}

// forget drops cache entries made by a transaction that was rolled back:
// the ids they hold may not exist.
func (w *Writer) forget(b *batch) {
	w.offlineLoaded = false
	for _, p := range b.cachedMachines {
		delete(w.machines, p)
	}
	for _, k := range b.cachedTags {
		delete(w.tags, k)
	}
	for _, word := range b.cachedWords {
		delete(w.words, word)
	}
	w.tagCount -= b.createdTags
}

func (w *Writer) writeBatch(ctx context.Context, st *stmts, parts []part, pending []plant.Reject, b *batch) (err error) {
	tx, err := w.s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: write: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	t := st.in(ctx, tx)
	defer t.close()
	now := w.cfg.Now()
	nowMS := now.UnixMilli()

	if err := w.checkTagCount(ctx, tx, now); err != nil {
		return err
	}
	if err := w.loadOffline(ctx, tx); err != nil {
		return err
	}

	for _, p := range parts {
		for i := p.lo; i < p.hi; i++ {
			r := &p.it.rs[i]
			if err := w.writeReading(ctx, t, r, nowMS, b); err != nil {
				return err
			}
		}
	}
	for id, lv := range b.last {
		if _, err := t.last.ExecContext(ctx, lv.ts, lv.value, id); err != nil {
			return fmt.Errorf("db: write: last value of tag %d: %w", id, err)
		}
	}
	var lastReject int64
	for _, r := range append(pending, b.rejects...) {
		res, err := t.reject.ExecContext(ctx, r.TS, r.Topic, r.Reason, r.Detail, r.Payload)
		if err != nil {
			return fmt.Errorf("db: write: reject: %w", err)
		}
		if lastReject, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("db: write: reject: %w", err)
		}
	}
	if lastReject > 0 {
		// Ids only grow, so everything at or below newest-N is older than
		// the N rows kept; the delete is a range scan on the rowid.
		if _, err := t.trim.ExecContext(ctx, lastReject-int64(w.cfg.MaxRejects)); err != nil {
			return fmt.Errorf("db: write: trim rejects: %w", err)
		}
	}
	// Rollups commit with their readings while the writer keeps up; while
	// it is busy they are held in memory for up to rollupDefer and listed
	// in rollup_pending (rollup_buffer.go).
	if !w.noRollups {
		stream := true
		for _, p := range parts {
			stream = stream && p.it.stream
		}
		flush := w.roll.due(stream || w.busy(), now)
		if b.roll, err = w.roll.stage(ctx, t, b.stored, flush); err != nil {
			return err
		}
	}
	if len(b.left) > 0 {
		// Announcements go to the hook and to OnCommit with the readings,
		// but never into rollups or row counts: they carry no value.
		b.stored = append(b.stored, b.left...)
	}
	if w.cfg.Hook != nil && len(b.stored) > 0 {
		b.hooked = true
		if err := w.cfg.Hook.Apply(ctx, tx, b.stored, nowMS); err != nil {
			return fmt.Errorf("db: write: hook: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: write: commit: %w", err)
	}
	return nil
}

// tick runs Hook.Tick in a transaction of its own and tells the hook how it
// ended. A failure is logged and counted; the next tick tries again.
func (w *Writer) tick(ctx context.Context) {
	err := w.tickTx(ctx)
	if err != nil {
		w.cfg.Hook.Rollback()
		w.m.writeError.Inc()
		w.log.Error("db tick failed", "err", err)
		return
	}
	w.cfg.Hook.Commit()
}

func (w *Writer) tickTx(ctx context.Context) error {
	return w.inTx(ctx, "tick", func(ctx context.Context, tx *sql.Tx) error {
		if err := w.cfg.Hook.Tick(ctx, tx, w.cfg.Now().UnixMilli()); err != nil {
			return fmt.Errorf("db: tick: hook: %w", err)
		}
		return nil
	})
}

// job is one maintenance step handed to the writer goroutine by Do.
type job struct {
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

// Do runs fn in a transaction of its own on the writer goroutine, between
// batches, and returns its error (or the commit's). Background maintenance
// (the rollup backfill, retention) goes through here in small steps: the
// write connection has one owner, so a step never waits on a lock held by
// ingest and ingest waits at most one step. Do returns ErrClosed once the
// writer stops, or ctx's error if ctx ends before the writer takes the step.
func (w *Writer) Do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	j := job{fn: fn, done: make(chan error, 1)}
	select {
	case w.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.closing.Done():
		return ErrClosed
	}
	// Taken: Run finishes it before anything else, so this wait is short.
	return <-j.done
}

// inTx runs fn in a transaction of its own on the write connection and
// commits it, or rolls it back when fn fails; what names it in errors.
func (w *Writer) inTx(ctx context.Context, what string, fn func(ctx context.Context, tx *sql.Tx) error) (err error) {
	tx, err := w.s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: %s: begin: %w", what, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: %s: commit: %w", what, err)
	}
	return nil
}

// checkTagCount loads the number of tags once, and re-reads it now and then
// while tags are being refused, so room made by an admin is noticed.
func (w *Writer) checkTagCount(ctx context.Context, tx *sql.Tx, now time.Time) error {
	if w.tagCounted && (len(w.refused) == 0 || now.Sub(w.refusedAt) < refusedRecheck) {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM tags").Scan(&n); err != nil {
		return fmt.Errorf("db: write: count tags: %w", err)
	}
	w.tagCount, w.tagCounted = n, true
	clear(w.refused)
	w.refusedAt = now
	return nil
}

func (w *Writer) writeReading(ctx context.Context, t *txStmts, r *plant.Reading, nowMS int64, b *batch) error {
	if r.Offline {
		return w.writeOffline(ctx, t, r, b)
	}
	if detail := invalidName(r); detail != "" {
		b.refuse(*r, plant.ReasonNameInvalid, detail, nowMS, true)
		return nil
	}
	if r.Word == "" && (math.IsNaN(r.Value) || math.IsInf(r.Value, 0)) {
		// SQLite would store NaN as NULL and fail the whole batch on the
		// NOT NULL constraint; one bad reading must not cost the others.
		b.refuse(*r, plant.ReasonNotFinite, fmt.Sprintf("metric %q: value is not a finite number", r.Metric), nowMS, true)
		return nil
	}
	key := tagKey{path: r.Path, metric: r.Metric}
	tag, ok, err := w.tag(ctx, t, key, r, nowMS, b)
	if err != nil || !ok {
		return err
	}
	if r.Unit != "" && r.Unit != tag.unit {
		if _, err := t.unit.ExecContext(ctx, r.Unit, tag.id); err != nil {
			return fmt.Errorf("db: write: unit of tag %d: %w", tag.id, err)
		}
		tag.unit = r.Unit
		w.tags[key] = tag
		b.cachedTags = append(b.cachedTags, key)
	}
	value := r.Value
	if r.Word != "" {
		// Words are interned whatever the tag's text flag says: the flag
		// follows the tag's first reading, and a reading of the other kind
		// is stored anyway (numbers as they are, words as their id) rather
		// than lost.
		id, err := w.word(ctx, t, r.Word, b)
		if err != nil {
			return err
		}
		value = float64(id)
	}
	ts := r.TS
	if last, seen := w.arrivals[tag.id]; r.Arrival && seen && ts <= last {
		// Stamped on arrival and arriving in the same millisecond as the
		// tag's previous reading (a backlog replayed after an outage): move it
		// on a millisecond, or the primary key would fold the two into one.
		ts = last + 1
	}
	res, err := t.reading.ExecContext(ctx, tag.id, ts, value)
	if err != nil {
		return fmt.Errorf("db: write: reading of tag %d: %w", tag.id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("db: write: reading of tag %d: %w", tag.id, err)
	}
	if r.Arrival {
		w.arrivals[tag.id] = ts
	}
	if n == 0 {
		b.duplicates++
		return nil
	}
	if off, ok := w.offline[tag.machineID]; ok && plant.BackOnline(off, ts) {
		if _, err := t.tx.ExecContext(ctx, `UPDATE assets SET offline_ms = 0 WHERE id = ?`, tag.machineID); err != nil {
			return fmt.Errorf("db: write: machine %d back online: %w", tag.machineID, err)
		}
		delete(w.offline, tag.machineID)
	}
	b.stored = append(b.stored, plant.Stored{TagID: tag.id, MachineID: tag.machineID, TS: ts, Value: value, Word: r.Word})
	if b.last == nil {
		b.last = make(map[int64]lastValue)
	}
	if lv, seen := b.last[tag.id]; !seen || ts > lv.ts {
		b.last[tag.id] = lastValue{ts: ts, value: value}
	}
	return nil
}

// writeOffline records that a machine's device announced it left: the
// machine is offline from r.TS until a reading brings it back
// (plant.BackOnline). A machine the store does not know is not created for
// it, and one already offline keeps the time it left first.
func (w *Writer) writeOffline(ctx context.Context, t *txStmts, r *plant.Reading, b *batch) error {
	if r.Path.Machine == "" || slashLevel(r.Path) != "" {
		return nil
	}
	id, err := w.machine(ctx, t, r.Path, 0, b, false)
	if err != nil || id == 0 {
		return err
	}
	if _, ok := w.offline[id]; ok {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE assets SET offline_ms = ? WHERE id = ?`, r.TS, id); err != nil {
		return fmt.Errorf("db: write: machine %d offline: %w", id, err)
	}
	w.offline[id] = r.TS
	b.left = append(b.left, plant.Stored{MachineID: id, TS: r.TS, Offline: true})
	return nil
}

// loadOffline reads which machines are offline by their own announcement,
// before the first batch and after a failed one.
func (w *Writer) loadOffline(ctx context.Context, tx *sql.Tx) error {
	if w.offlineLoaded {
		return nil
	}
	w.offline = make(map[int64]int64)
	rows, err := tx.QueryContext(ctx, `SELECT id, offline_ms FROM assets WHERE offline_ms > 0`)
	if err != nil {
		return fmt.Errorf("db: write: offline machines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, ms int64
		if err := rows.Scan(&id, &ms); err != nil {
			return fmt.Errorf("db: write: offline machines: %w", err)
		}
		w.offline[id] = ms
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("db: write: offline machines: %w", err)
	}
	w.offlineLoaded = true
	return nil
}

// slashLevel returns a level of p holding '/', which would make two
// different paths share one string, or "".
func slashLevel(p plant.Path) string {
	for _, l := range []string{p.Site, p.Area, p.Line, p.Machine} {
		if strings.Contains(l, "/") {
			return l
		}
	}
	return ""
}

// invalidName explains why a reading cannot name a tag, or returns "".
func invalidName(r *plant.Reading) string {
	switch {
	case r.Metric == "":
		return fmt.Sprintf("topic %q: empty metric name", r.Topic)
	case r.Path.Machine == "":
		return fmt.Sprintf("topic %q: empty machine name", r.Topic)
	}
	if l := slashLevel(r.Path); l != "" {
		return fmt.Sprintf("topic %q: asset name %q contains '/'", r.Topic, l)
	}
	return ""
}

// tag returns the tag for key, creating its machine's assets and the tag on
// a miss. ok is false when the tag limit refused it.
func (w *Writer) tag(ctx context.Context, t *txStmts, key tagKey, r *plant.Reading, nowMS int64, b *batch) (tagInfo, bool, error) {
	if tag, ok := w.tags[key]; ok {
		return tag, true, nil
	}
	if _, ok := w.refused[key]; ok {
		b.refuse(*r, plant.ReasonTagLimit, "", nowMS, false)
		return tagInfo{}, false, nil
	}
	// Look for an existing machine and tag first, without creating
	// anything, so that a full plant still stores readings of known tags.
	machineID, err := w.machine(ctx, t, key.path, nowMS, b, false)
	if err != nil {
		return tagInfo{}, false, err
	}
	if machineID != 0 {
		var tag tagInfo
		err := t.selTag.QueryRowContext(ctx, machineID, key.metric).Scan(&tag.id, &tag.unit)
		switch {
		case err == nil:
			tag.machineID = machineID
			w.tags[key] = tag
			b.cachedTags = append(b.cachedTags, key)
			return tag, true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return tagInfo{}, false, fmt.Errorf("db: write: find tag %s %s: %w", key.path, key.metric, err)
		}
	}
	if w.tagCount >= w.cfg.MaxTags {
		if len(w.refused) >= maxRefused {
			clear(w.refused)
		}
		w.refused[key] = struct{}{}
		b.refuse(*r, plant.ReasonTagLimit,
			fmt.Sprintf("machine %q metric %q: tag limit of %d reached", key.path.String(), key.metric, w.cfg.MaxTags), nowMS, true)
		return tagInfo{}, false, nil
	}
	if machineID == 0 {
		if machineID, err = w.machine(ctx, t, key.path, nowMS, b, true); err != nil {
			return tagInfo{}, false, err
		}
	}
	text := 0
	if r.Word != "" {
		text = 1
	}
	res, err := t.insTag.ExecContext(ctx, machineID, key.metric, r.Topic, text, r.Unit, plant.RoleFor(key.metric), nowMS)
	if err != nil {
		return tagInfo{}, false, fmt.Errorf("db: write: create tag %s %s: %w", key.path, key.metric, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return tagInfo{}, false, fmt.Errorf("db: write: create tag %s %s: %w", key.path, key.metric, err)
	}
	tag := tagInfo{id: id, machineID: machineID, unit: r.Unit}
	w.tags[key] = tag
	b.cachedTags = append(b.cachedTags, key)
	w.tagCount++
	b.createdTags++
	b.newTags = true
	return tag, true, nil
}

// machine returns the asset id of the machine at p, or 0 if it does not
// exist and create is false. With create it makes the missing levels of the
// tree, each the parent of the next; paths are the identity, so an existing
// asset at a path is reused whatever its kind.
func (w *Writer) machine(ctx context.Context, t *txStmts, p plant.Path, nowMS int64, b *batch, create bool) (int64, error) {
	if id, ok := w.machines[p]; ok {
		return id, nil
	}
	levels := []struct{ kind, name string }{
		{"site", p.Site}, {"area", p.Area}, {"line", p.Line}, {"machine", p.Machine},
	}
	full := p.String()
	if !create {
		var id int64
		err := t.selAsset.QueryRowContext(ctx, full).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("db: write: find asset %s: %w", full, err)
		}
		w.machines[p] = id
		b.cachedMachines = append(b.cachedMachines, p)
		return id, nil
	}
	var parent sql.NullInt64
	var path string
	for _, l := range levels {
		if l.name == "" {
			continue
		}
		if path == "" {
			path = l.name
		} else {
			path += "/" + l.name
		}
		var id int64
		err := t.selAsset.QueryRowContext(ctx, path).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			res, ierr := t.insAsset.ExecContext(ctx, parent, l.kind, l.name, path, nowMS)
			if ierr != nil {
				return 0, fmt.Errorf("db: write: create asset %s: %w", path, ierr)
			}
			id, err = res.LastInsertId()
		}
		if err != nil {
			return 0, fmt.Errorf("db: write: asset %s: %w", path, err)
		}
		parent = sql.NullInt64{Int64: id, Valid: true}
	}
	w.machines[p] = parent.Int64
	b.cachedMachines = append(b.cachedMachines, p)
	return parent.Int64, nil
}

// word returns the id of word, interning it on a miss.
func (w *Writer) word(ctx context.Context, t *txStmts, word string, b *batch) (int64, error) {
	if id, ok := w.words[word]; ok {
		return id, nil
	}
	var id int64
	err := t.selWord.QueryRowContext(ctx, word).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		res, ierr := t.insWord.ExecContext(ctx, word)
		if ierr != nil {
			return 0, fmt.Errorf("db: write: word %q: %w", word, ierr)
		}
		id, err = res.LastInsertId()
	}
	if err != nil {
		return 0, fmt.Errorf("db: write: word %q: %w", word, err)
	}
	if len(w.words) >= maxWordCache {
		clear(w.words)
	}
	w.words[word] = id
	b.cachedWords = append(b.cachedWords, word)
	return id, nil
}

// stmts are prepared once on the writer pool; each transaction binds them
// with tx.Stmt, which reuses the connection's prepared statement.
type stmts struct {
	reading, last, unit, reject, trim  *sql.Stmt
	selAsset, insAsset, selTag, insTag *sql.Stmt
	selWord, insWord                   *sql.Stmt
	roll1m, roll1h, counts, pending    *sql.Stmt
	all                                []*sql.Stmt
}

type txStmts struct {
	tx                                 *sql.Tx
	reading, last, unit, reject, trim  *sql.Stmt
	selAsset, insAsset, selTag, insTag *sql.Stmt
	selWord, insWord                   *sql.Stmt
	roll1m, roll1h, counts, pending    *sql.Stmt
	all                                []*sql.Stmt
}

func (w *Writer) prepare(ctx context.Context) (*stmts, error) {
	st := &stmts{}
	defs := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&st.reading, "INSERT OR IGNORE INTO readings(tag_id, ts_ms, value) VALUES (?, ?, ?)"},
		{&st.last, "UPDATE tags SET last_ts_ms = ?1, last_value = ?2 WHERE id = ?3 AND (last_ts_ms IS NULL OR last_ts_ms < ?1)"},
		{&st.unit, "UPDATE tags SET unit = ? WHERE id = ?"},
		{&st.reject, "INSERT INTO rejects(ts_ms, topic, reason, detail, payload) VALUES (?, ?, ?, ?, ?)"},
		{&st.trim, "DELETE FROM rejects WHERE id <= ?"},
		{&st.selAsset, "SELECT id FROM assets WHERE path = ?"},
		{&st.insAsset, "INSERT INTO assets(parent_id, kind, name, path, created_ms) VALUES (?, ?, ?, ?, ?)"},
		{&st.selTag, "SELECT id, unit FROM tags WHERE machine_id = ? AND metric = ?"},
		{&st.insTag, "INSERT INTO tags(machine_id, metric, topic, text, unit, role, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"},
		{&st.selWord, "SELECT id FROM words WHERE word = ?"},
		{&st.insWord, "INSERT INTO words(word) VALUES (?)"},
		{&st.roll1m, upsertRollupSQL("rollups_1m")},
		{&st.roll1h, upsertRollupSQL("rollups_1h")},
		{&st.counts, addCountsSQL},
		{&st.pending, `INSERT OR IGNORE INTO rollup_pending(tag_id, bucket_ms) VALUES (?, ?)`},
	}
	for _, d := range defs {
		s, err := w.s.w.PrepareContext(ctx, d.query)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("db: writer: prepare %q: %w", d.query, err)
		}
		*d.dst = s
		st.all = append(st.all, s)
	}
	return st, nil
}

func (st *stmts) close() {
	for _, s := range st.all {
		s.Close()
	}
}

func (st *stmts) in(ctx context.Context, tx *sql.Tx) *txStmts {
	t := &txStmts{tx: tx}
	bind := func(s *sql.Stmt) *sql.Stmt {
		ts := tx.StmtContext(ctx, s)
		t.all = append(t.all, ts)
		return ts
	}
	t.reading, t.last, t.unit = bind(st.reading), bind(st.last), bind(st.unit)
	t.reject, t.trim = bind(st.reject), bind(st.trim)
	t.selAsset, t.insAsset = bind(st.selAsset), bind(st.insAsset)
	t.selTag, t.insTag = bind(st.selTag), bind(st.insTag)
	t.selWord, t.insWord = bind(st.selWord), bind(st.insWord)
	t.roll1m, t.roll1h, t.counts, t.pending = bind(st.roll1m), bind(st.roll1h), bind(st.counts), bind(st.pending)
	return t
}

func (t *txStmts) close() {
	for _, s := range t.all {
		s.Close()
	}
}
