package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/views"
)

// HistoryStore is what charts at any range and the storage page need.
type HistoryStore interface {
	SeriesAt(ctx context.Context, tagID, fromMS, toMS int64, maxPoints int, res db.Resolution) (db.SeriesResult, error)
	Storage(ctx context.Context) (db.Storage, error)
}

// adminStorage is GET /admin/storage: the database's size, rows and oldest
// data per resolution, retention and the rollup backfill's progress.
func (s *Server) adminStorage(c echo.Context) error {
	st, err := s.store.Storage(c.Request().Context())
	if err != nil {
		return fmt.Errorf("web: storage: %w", err)
	}
	v := views.StoragePage{
		AdminPage: s.adminPage(c, "Storage", "storage", views.FormErr{}),
		Location:  s.loc,
		NowMS:     s.now().UnixMilli(),
		FileBytes: st.FileBytes, WALBytes: st.WALBytes, UsedBytes: st.UsedBytes, FreeBytes: st.FreeBytes,
		MaxBytes: st.MaxBytes,
		Backfill: views.BackfillRow{
			Done: st.Backfill.Done, Ran: st.Backfill.StartedMS != 0, DoneMS: st.Backfill.DoneMS,
			Tags: st.Backfill.Tags, TagsDone: st.Backfill.TagsDone, Readings: st.Backfill.Readings,
		},
	}
	names := map[db.Resolution]string{db.ResRaw: "Raw readings", db.Res1m: "1-minute rollups", db.Res1h: "1-hour rollups"}
	for _, l := range st.Levels {
		row := views.StorageRow{Res: string(l.Res), Name: names[l.Res], Rows: l.Rows, Keep: l.Keep}
		if l.Rows > 0 {
			row.OldestMS = l.OldestMS
		}
		v.Levels = append(v.Levels, row)
	}
	return s.render(c, http.StatusOK, views.StorageView(v))
}
