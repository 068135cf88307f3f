package db

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"testing"
)

// forgetRollups turns s into a database as it was before the rollups: the
// readings stay, the rollups and counts are gone and the backfill is due.
func forgetRollups(t *testing.T, s *Store) {
	t.Helper()
	for _, q := range []string{
		`DELETE FROM rollups_1m`, `DELETE FROM rollups_1h`, `UPDATE storage_counts SET rows = 0`,
		`UPDATE rollup_backfill SET next_tag = (SELECT MIN(id) FROM tags), next_ms = -9223372036854775808,
			last_tag = (SELECT MAX(id) FROM tags), readings = 0, started_ms = NULL, done_ms = NULL`,
	} {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBackfillBuildsTheSameRollups(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	w := NewWriter(s, WriterConfig{})
	stop := runWriter(t, w)
	rng := rand.New(rand.NewPCG(3, 4))
	base := int64(1_780_000_000_000)
	if err := w.Write(ctx, randomReadings(rng, 4000, base)); err != nil {
		t.Fatal(err)
	}
	forgetRollups(t, s)
	p, err := s.Backfill(ctx)
	if err != nil || p.Done || p.Tags != 4 || p.TagsDone != 0 {
		t.Fatalf("before: %+v, %v; want 4 tags to do", p, err)
	}

	// A few steps, with live readings (late ones too, into buckets the
	// backfill has not reached or has passed) between them.
	for i := range 6 {
		var done bool
		if err := w.Do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			done, err = backfillStep(ctx, tx, 1, 300)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if done {
			t.Fatalf("done after %d steps of 300 readings, want more steps", i+1)
		}
		if err := w.Write(ctx, randomReadings(rng, 50, base)); err != nil {
			t.Fatal(err)
		}
	}
	p, err = s.Backfill(ctx)
	if err != nil || p.Done || p.Readings == 0 || p.StartedMS != 1 {
		t.Fatalf("midway: %+v, %v", p, err)
	}

	// A restart: a new writer resumes from the bookmark and finishes.
	stopAndCheck(t, stop)
	w = NewWriter(s, WriterConfig{})
	runWriter(t, w)
	if err := RunBackfill(ctx, w, BackfillConfig{StepReadings: 500, Pause: 1}); err != nil {
		t.Fatal(err)
	}
	p, err = s.Backfill(ctx)
	if err != nil || !p.Done || p.TagsDone != 4 || p.DoneMS == 0 {
		t.Fatalf("after: %+v, %v", p, err)
	}
	checkRollups(t, s)
	// Done is done: another run does nothing and changes nothing.
	if err := RunBackfill(ctx, w, BackfillConfig{}); err != nil {
		t.Fatal(err)
	}
	checkRollups(t, s)
}

func TestBackfillNothingToDo(t *testing.T) {
	s := OpenTest(t)
	p, err := s.Backfill(context.Background())
	if err != nil || !p.Done || p.StartedMS != 0 {
		t.Fatalf("fresh database: %+v, %v; want done without running", p, err)
	}
}
