package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"andon/plant"
)

// unmappedReasons are the reject reasons that mean "nothing understood this
// message": its topic is not in the default layout, or its payload is not in
// a shape the decoders know. Such topics want a mapping rule; the others
// (a wrong clock, a full queue, a tag limit) want something else.
var unmappedReasons = []string{
	plant.ReasonTopicTooShort,
	plant.ReasonBadJSON,
	plant.ReasonEmpty,
	plant.ReasonNotANumber,
	plant.ReasonTopicInvalid,
	plant.ReasonUnmapped,
}

// defaultUnmappedTopics is how many topics UnmappedTopics lists when asked
// for no particular number.
const defaultUnmappedTopics = 100

// UnmappedTopic is one topic of the admin's inbox: messages on it that no
// decoder understood, with the newest one as a sample.
type UnmappedTopic struct {
	Topic   string
	Count   int   // its rejected messages still in the rejects table
	FirstMS int64 // the oldest of them
	LastMS  int64 // the newest
	Reason  string
	Detail  string // the newest message's reason and explanation
	Payload []byte // the newest message's first bytes
}

const mappingColumns = `id, source, pattern, value_path, ts_path, metric, unit, scale, add_offset,
	availability, online_word, offline_word, note`

func scanMappingRule(sc interface{ Scan(...any) error }) (plant.MappingRule, error) {
	var r plant.MappingRule
	err := sc.Scan(&r.ID, &r.Source, &r.Pattern, &r.Value, &r.Timestamp, &r.Metric, &r.Unit, &r.Scale, &r.Offset,
		&r.Availability, &r.Online, &r.Offline, &r.Note)
	return r, err
}

// MappingRules returns every mapping rule in the order ingest tries them:
// the config file's, then the admin's, each by position.
func (s *Store) MappingRules(ctx context.Context) ([]plant.MappingRule, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+mappingColumns+` FROM mapping_rules
		ORDER BY source = 'admin', position, id`)
	if err != nil {
		return nil, fmt.Errorf("db: mapping rules: %w", err)
	}
	defer rows.Close()
	var out []plant.MappingRule
	for rows.Next() {
		r, err := scanMappingRule(rows)
		if err != nil {
			return nil, fmt.Errorf("db: mapping rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: mapping rules: %w", err)
	}
	return out, nil
}

// MappingRule returns one rule, or plant.ErrNotFound.
func (s *Store) MappingRule(ctx context.Context, id int64) (plant.MappingRule, error) {
	r, err := scanMappingRule(s.r.QueryRowContext(ctx, `SELECT `+mappingColumns+` FROM mapping_rules WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return plant.MappingRule{}, notFound("db: mapping rule %d", id)
	}
	if err != nil {
		return plant.MappingRule{}, fmt.Errorf("db: mapping rule %d: %w", id, err)
	}
	return r, nil
}

// AddMappingRule appends an admin's rule after the others and returns its
// id. The rule is checked with plant.MappingRule.Validate (a *MappingError,
// plant.ErrInvalid); that its pattern and paths compile is the caller's
// check, since the store does not know the decoders.
func (s *Store) AddMappingRule(ctx context.Context, r plant.MappingRule) (int64, error) {
	r.Source = plant.RuleFromAdmin
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("db: add mapping rule: %w", err)
	}
	now := time.Now().UnixMilli()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("db: add mapping rule: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var pos int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) + 1 FROM mapping_rules WHERE source = 'admin'`).Scan(&pos); err != nil {
		return 0, fmt.Errorf("db: add mapping rule: %w", err)
	}
	id, err := insertMappingRule(ctx, tx, r, pos, now)
	if err != nil {
		return 0, fmt.Errorf("db: add mapping rule: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("db: add mapping rule: commit: %w", err)
	}
	s.log.Info("mapping rule added", "id", id, "pattern", r.Pattern)
	return id, nil
}

func insertMappingRule(ctx context.Context, tx *sql.Tx, r plant.MappingRule, pos, now int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO mapping_rules(source, position, pattern, value_path, ts_path, metric,
		unit, scale, add_offset, availability, online_word, offline_word, note, created_ms, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Source, pos, r.Pattern, r.Value, r.Timestamp, r.Metric, r.Unit, r.Scale, r.Offset,
		r.Availability, r.Online, r.Offline, r.Note, now, now)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// adminRule checks, inside tx, that rule id exists and is an admin's: the
// config file's rules are changed in the file, or the next start would undo
// the change.
func adminRule(ctx context.Context, tx *sql.Tx, id int64) (position int64, err error) {
	var source string
	err = tx.QueryRowContext(ctx, `SELECT source, position FROM mapping_rules WHERE id = ?`, id).Scan(&source, &position)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, notFound("db: mapping rule %d", id)
	case err != nil:
		return 0, fmt.Errorf("db: mapping rule %d: %w", id, err)
	case source != plant.RuleFromAdmin:
		return 0, invalid("db: mapping rule %d comes from the config file; change it there", id)
	}
	return position, nil
}

// UpdateMappingRule replaces an admin's rule r.ID, keeping its place.
// plant.ErrNotFound for no such rule, plant.ErrInvalid for a config rule or
// a rule that Validate refuses.
func (s *Store) UpdateMappingRule(ctx context.Context, r plant.MappingRule) error {
	r.Source = plant.RuleFromAdmin
	if err := r.Validate(); err != nil {
		return fmt.Errorf("db: mapping rule %d: %w", r.ID, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: mapping rule %d: %w", r.ID, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := adminRule(ctx, tx, r.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mapping_rules SET pattern = ?, value_path = ?, ts_path = ?, metric = ?,
		unit = ?, scale = ?, add_offset = ?, availability = ?, online_word = ?, offline_word = ?, note = ?, updated_ms = ?
		WHERE id = ?`,
		r.Pattern, r.Value, r.Timestamp, r.Metric, r.Unit, r.Scale, r.Offset, r.Availability, r.Online, r.Offline,
		r.Note, time.Now().UnixMilli(), r.ID); err != nil {
		return fmt.Errorf("db: mapping rule %d: %w", r.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: mapping rule %d: commit: %w", r.ID, err)
	}
	s.log.Info("mapping rule updated", "id", r.ID, "pattern", r.Pattern)
	return nil
}

// DeleteMappingRule deletes an admin's rule.
func (s *Store) DeleteMappingRule(ctx context.Context, id int64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: mapping rule %d: delete: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := adminRule(ctx, tx, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM mapping_rules WHERE id = ?`, id); err != nil {
		return fmt.Errorf("db: mapping rule %d: delete: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: mapping rule %d: delete: %w", id, err)
	}
	s.log.Info("mapping rule deleted", "id", id)
	return nil
}

// MoveMappingRule swaps an admin's rule with the admin rule before it (up)
// or after it. A rule already first or last stays where it is. Config rules
// always come first and do not move.
func (s *Store) MoveMappingRule(ctx context.Context, id int64, up bool) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: mapping rule %d: move: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	pos, err := adminRule(ctx, tx, id)
	if err != nil {
		return err
	}
	q := `SELECT id, position FROM mapping_rules WHERE source = 'admin' AND (position > ? OR (position = ? AND id > ?))
		ORDER BY position, id LIMIT 1`
	if up {
		q = `SELECT id, position FROM mapping_rules WHERE source = 'admin' AND (position < ? OR (position = ? AND id < ?))
		ORDER BY position DESC, id DESC LIMIT 1`
	}
	var other, otherPos int64
	err = tx.QueryRowContext(ctx, q, pos, pos, id).Scan(&other, &otherPos)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // already at the end it moves towards
	}
	if err != nil {
		return fmt.Errorf("db: mapping rule %d: move: %w", id, err)
	}
	if otherPos == pos {
		// Equal positions (never made here, but cheap to mend): make
		// room so the swap changes the order.
		if up {
			otherPos = pos - 1
		} else {
			otherPos = pos + 1
		}
	}
	now := time.Now().UnixMilli()
	for _, mv := range [][2]int64{{id, otherPos}, {other, pos}} {
		if _, err := tx.ExecContext(ctx, `UPDATE mapping_rules SET position = ?, updated_ms = ? WHERE id = ?`, mv[1], now, mv[0]); err != nil {
			return fmt.Errorf("db: mapping rule %d: move: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: mapping rule %d: move: %w", id, err)
	}
	return nil
}

// SetConfigMappingRules replaces the config file's rules with rules, in
// their order, at start: the file is the declared set-up, so what it no
// longer names goes. The admin's rules are left alone. Each rule is checked
// with Validate; the caller has compiled them.
func (s *Store) SetConfigMappingRules(ctx context.Context, rules []plant.MappingRule) error {
	for i := range rules {
		rules[i].Source = plant.RuleFromConfig
		if err := rules[i].Validate(); err != nil {
			return fmt.Errorf("db: config mapping rule %d: %w", i+1, err)
		}
	}
	now := time.Now().UnixMilli()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: config mapping rules: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `DELETE FROM mapping_rules WHERE source = 'config'`); err != nil {
		return fmt.Errorf("db: config mapping rules: %w", err)
	}
	for i, r := range rules {
		if _, err := insertMappingRule(ctx, tx, r, int64(i+1), now); err != nil {
			return fmt.Errorf("db: config mapping rule %d: %w", i+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: config mapping rules: commit: %w", err)
	}
	return nil
}

// UnmappedTopics groups the stored rejects that no decoder understood by
// topic, newest first: per topic how many, the first and last time, and the
// newest message's reason, detail and payload as a sample. limit <= 0 means
// 100. The rejects table is bounded, so this reads a few thousand rows at
// most.
func (s *Store) UnmappedTopics(ctx context.Context, limit int) ([]UnmappedTopic, error) {
	if limit <= 0 {
		limit = defaultUnmappedTopics
	}
	args := make([]any, 0, len(unmappedReasons)+1)
	for _, r := range unmappedReasons {
		args = append(args, r)
	}
	args = append(args, limit)
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(unmappedReasons)), ", ")
	rows, err := s.r.QueryContext(ctx, `
		SELECT r.topic, g.n, g.first_ms, g.last_ms, r.reason, r.detail, r.payload
		FROM (SELECT topic, COUNT(*) AS n, MIN(ts_ms) AS first_ms, MAX(ts_ms) AS last_ms, MAX(id) AS last_id
			FROM rejects WHERE reason IN (`+marks+`) GROUP BY topic) g
		JOIN rejects r ON r.id = g.last_id
		ORDER BY g.last_ms DESC, r.topic
		LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("db: unmapped topics: %w", err)
	}
	defer rows.Close()
	var out []UnmappedTopic
	for rows.Next() {
		var u UnmappedTopic
		if err := rows.Scan(&u.Topic, &u.Count, &u.FirstMS, &u.LastMS, &u.Reason, &u.Detail, &u.Payload); err != nil {
			return nil, fmt.Errorf("db: unmapped topics: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: unmapped topics: %w", err)
	}
	return out, nil
}
