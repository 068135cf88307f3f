package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"andon/plant"
)

func TestAudit(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()

	if got, err := s.AuditLog(ctx, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("AuditLog of a new store = %v, %v", got, err)
	}
	for i := 1; i <= 25; i++ {
		e := AuditEntry{TS: t0 + int64(i), Actor: "anna", Action: "user.create", Object: fmt.Sprintf("user%02d", i), Detail: "role viewer"}
		if err := s.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	objects := func(es []AuditEntry) string {
		var out []string
		for _, e := range es {
			out = append(out, strings.TrimPrefix(e.Object, "user"))
		}
		return strings.Join(out, ",")
	}

	t.Run("pages, newest first", func(t *testing.T) {
		page1, err := s.AuditLog(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := objects(page1), "25,24,23,22,21,20,19,18,17,16"; got != want {
			t.Fatalf("page 1 = %s, want %s", got, want)
		}
		page2, err := s.AuditLog(ctx, page1[len(page1)-1].ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := objects(page2), "15,14,13,12,11,10,09,08,07,06"; got != want {
			t.Errorf("page 2 = %s, want %s", got, want)
		}
		page3, err := s.AuditLog(ctx, page2[len(page2)-1].ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := objects(page3), "05,04,03,02,01"; got != want {
			t.Errorf("page 3 = %s, want %s", got, want)
		}
		e := page3[len(page3)-1]
		if e.TS != t0+1 || e.Actor != "anna" || e.Action != "user.create" || e.Detail != "role viewer" {
			t.Errorf("oldest entry = %+v", e)
		}
		all, err := s.AuditLog(ctx, 0, 0)
		if err != nil || len(all) != 25 {
			t.Errorf("AuditLog(limit 0) = %d entries, %v; want all 25 (default page 100)", len(all), err)
		}
	})

	t.Run("all, oldest first, streaming", func(t *testing.T) {
		var got []AuditEntry
		if err := s.AuditAll(ctx, func(e AuditEntry) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 25 || got[0].Object != "user01" || got[24].Object != "user25" {
			t.Fatalf("AuditAll = %s, want 01 to 25", objects(got))
		}
		stop := errors.New("client went away")
		n := 0
		err := s.AuditAll(ctx, func(AuditEntry) error {
			n++
			if n == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 3 {
			t.Errorf("AuditAll with a failing callback: %v after %d calls, want the callback's error after 3", err, n)
		}
	})

	t.Run("time defaults to now; long fields are cut", func(t *testing.T) {
		before := time.Now().UnixMilli()
		long := strings.Repeat("ä", 5000)
		if err := s.Audit(ctx, AuditEntry{Actor: "cli", Action: "user.disable", Object: long, Detail: long}); err != nil {
			t.Fatal(err)
		}
		got, err := s.AuditLog(ctx, 0, 1)
		if err != nil || len(got) != 1 {
			t.Fatal(got, err)
		}
		e := got[0]
		if e.TS < before || e.TS > time.Now().UnixMilli() {
			t.Errorf("TS = %d, want now (%d or later)", e.TS, before)
		}
		if n := utf8.RuneCountInString(e.Object); n != maxAuditField || !strings.HasSuffix(e.Object, "…") {
			t.Errorf("object kept %d characters, want %d ending in …", n, maxAuditField)
		}
		if n := utf8.RuneCountInString(e.Detail); n != maxAuditDetail {
			t.Errorf("detail kept %d characters, want %d", n, maxAuditDetail)
		}
	})

	t.Run("actor and action are needed", func(t *testing.T) {
		for _, e := range []AuditEntry{{Action: "x"}, {Actor: "x"}} {
			if err := s.Audit(ctx, e); !errors.Is(err, plant.ErrInvalid) {
				t.Errorf("Audit(%+v) = %v, want ErrInvalid", e, err)
			}
		}
	})
}
