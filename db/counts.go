package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"andon/plant"
)

// Counts returns the parts a machine made in [from, to), from its counter
// tags by role (good, scrap, total), read as monotonic counters: each tag's
// last reading before from is the baseline, so a reading at from counts in
// this period and adjacent periods add up. A machine with only a total
// counter (or total and scrap) gets good = total − scrap; one with good and
// total but no scrap counter gets scrap = total − good; neither goes below 0.
// When a machine has two numeric tags of one role, the older tag counts.
// to == 0 leaves the period open at the end.
func (s *Store) Counts(ctx context.Context, machineID, from, to int64) (good, scrap float64, err error) {
	if to == 0 {
		to = math.MaxInt64
	}
	rows, err := s.r.QueryContext(ctx, `SELECT role, MIN(id) FROM tags
		WHERE machine_id = ? AND text = 0 AND role IN ('good', 'scrap', 'total') GROUP BY role`, machineID)
	if err != nil {
		return 0, 0, fmt.Errorf("db: counts of machine %d: %w", machineID, err)
	}
	tags := make(map[string]int64, 3)
	for rows.Next() {
		var (
			role string
			id   int64
		)
		if err := rows.Scan(&role, &id); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("db: counts of machine %d: %w", machineID, err)
		}
		tags[role] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("db: counts of machine %d: %w", machineID, err)
	}
	made := make(map[string]float64, len(tags))
	for role, id := range tags {
		n, err := s.counterIncrease(ctx, id, from, to)
		if err != nil {
			return 0, 0, fmt.Errorf("db: counts of machine %d: %s: %w", machineID, role, err)
		}
		made[role] = n
	}
	_, hasGood := tags["good"]
	_, hasScrap := tags["scrap"]
	total, hasTotal := made["total"]
	good, scrap = made["good"], made["scrap"]
	switch {
	case !hasGood && hasTotal:
		good = max(0, total-scrap)
	case hasGood && hasTotal && !hasScrap:
		scrap = max(0, total-good)
	}
	return good, scrap, nil
}

// counterIncrease is what one counter tag says was made in [from, to).
func (s *Store) counterIncrease(ctx context.Context, tagID, from, to int64) (float64, error) {
	var before *plant.Point
	var b plant.Point
	err := s.r.QueryRowContext(ctx, `SELECT ts_ms, value FROM readings WHERE tag_id = ? AND ts_ms < ?
		ORDER BY ts_ms DESC LIMIT 1`, tagID, from).Scan(&b.TS, &b.Value)
	switch {
	case err == nil:
		before = &b
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("tag %d: baseline: %w", tagID, err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT ts_ms, value FROM readings WHERE tag_id = ? AND ts_ms >= ? AND ts_ms < ?
		ORDER BY ts_ms`, tagID, from, to)
	if err != nil {
		return 0, fmt.Errorf("tag %d: %w", tagID, err)
	}
	defer rows.Close()
	var pts []plant.Point
	for rows.Next() {
		var p plant.Point
		if err := rows.Scan(&p.TS, &p.Value); err != nil {
			return 0, fmt.Errorf("tag %d: %w", tagID, err)
		}
		pts = append(pts, p)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("tag %d: %w", tagID, err)
	}
	return plant.CountIncrease(before, pts, plant.Monotonic), nil
}
