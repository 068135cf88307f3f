package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"andon/plant"
)

// MachineIDByPath is the id of the machine with this path
// ("site/area/line/machine"), or plant.ErrNotFound before its first reading.
func (s *Store) MachineIDByPath(ctx context.Context, path string) (int64, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, `SELECT id FROM assets WHERE path = ? AND kind = 'machine'`, path).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("db: machine %q: %w", path, plant.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("db: machine %q: %w", path, err)
	}
	return id, nil
}
