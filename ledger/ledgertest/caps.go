package ledgertest

import (
	"time"

	"github.com/keybrake/keybrake/ledger"
)

func testLifetimeCapExact(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("10") })
	at := t0.Add(time.Minute)
	a := f.reserve(k, usd("3"), at, ledger.OutcomeForwarded)
	b := f.reserve(k, usd("3"), at, ledger.OutcomeForwarded)
	f.reserve(k, usd("3"), at, ledger.OutcomeForwarded)
	f.reserve(k, usd("1.000001"), at, ledger.OutcomeCapHit) // one micro-dollar too many
	f.reserve(k, usd("1"), at, ledger.OutcomeForwarded)     // exactly at the cap
	f.reserve(k, usd("0.000001"), at, ledger.OutcomeCapHit)
	f.reserve(k, 0, at, ledger.OutcomeForwarded) // spent + reserved + 0 <= cap
	f.wantUsage(k.ID, at, usage{Reserved: usd("10"), DayReserved: usd("10"), Calls: 5, CapHits: 2})

	// A release frees exactly its reservation.
	f.release(a, ledger.Settlement{StatusCode: 402, Now: at})
	f.reserve(k, usd("3.000001"), at, ledger.OutcomeCapHit)
	f.reserve(k, usd("3"), at, ledger.OutcomeForwarded)

	// Settling below the estimate frees the difference.
	f.settle(b, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: at})
	f.reserve(k, usd("2.000001"), at, ledger.OutcomeCapHit)
	f.reserve(k, usd("2"), at, ledger.OutcomeForwarded)
	f.wantUsage(k.ID, at, usage{
		Spent: usd("1"), Reserved: usd("9"), DaySpent: usd("1"), DayReserved: usd("9"), Calls: 7, CapHits: 4,
	})
}

func testDailyCapRollover(f *fixture) {
	day1 := ledger.Day(t0)
	day2, day3 := day1.AddDate(0, 0, 1), day1.AddDate(0, 0, 2)
	lastMicro := day2.Add(-time.Microsecond) // 23:59:59.999999 on day 1
	k := f.newKey(func(k *ledger.Key) { k.DailyCap, k.TotalCap = capOf("5"), nil })

	c1 := f.reserve(k, usd("3"), day1.Add(10*time.Hour), ledger.OutcomeForwarded)
	c2 := f.reserve(k, usd("2"), lastMicro, ledger.OutcomeForwarded)
	f.reserve(k, usd("0.000001"), lastMicro, ledger.OutcomeCapHit)

	// Days are UTC days: 08:00 on day 2 at UTC+10 is still day 1 in UTC.
	east := time.FixedZone("UTC+10", 10*60*60)
	eastMorning := time.Date(day2.Year(), day2.Month(), day2.Day(), 8, 0, 0, 0, east)
	f.reserve(k, usd("1"), eastMorning, ledger.OutcomeCapHit)

	// At midnight UTC the day starts over.
	c3 := f.reserve(k, usd("5"), day2, ledger.OutcomeForwarded)
	f.reserve(k, usd("0.000001"), day2, ledger.OutcomeCapHit)

	f.wantUsage(k.ID, day1.Add(12*time.Hour), usage{Reserved: usd("10"), DayReserved: usd("5"), Calls: 3, CapHits: 3})
	f.wantUsage(k.ID, eastMorning, usage{Reserved: usd("10"), DayReserved: usd("5"), Calls: 3, CapHits: 3})
	f.wantUsage(k.ID, day2.Add(time.Hour), usage{Reserved: usd("10"), DayReserved: usd("5"), Calls: 3, CapHits: 3})

	// Settling on day 2 moves the day-1 counters: a call counts on the day
	// it started.
	f.settle(c1, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: day2.Add(time.Hour)})
	f.wantUsage(k.ID, day1, usage{Spent: usd("1"), Reserved: usd("7"), DaySpent: usd("1"), DayReserved: usd("2"), Calls: 3, CapHits: 3})
	f.wantUsage(k.ID, day2, usage{Spent: usd("1"), Reserved: usd("7"), DayReserved: usd("5"), Calls: 3, CapHits: 3})
	f.reserve(k, usd("0.000001"), day2.Add(2*time.Hour), ledger.OutcomeCapHit) // day 1's room is not day 2's

	f.release(c2, ledger.Settlement{StatusCode: 400, Now: day2.Add(3 * time.Hour)})
	f.wantUsage(k.ID, day1, usage{Spent: usd("1"), Reserved: usd("5"), DaySpent: usd("1"), Calls: 3, CapHits: 4})

	f.wantUsage(k.ID, day3, usage{Spent: usd("1"), Reserved: usd("5"), Calls: 3, CapHits: 4})
	f.reserve(k, usd("5"), day3, ledger.OutcomeForwarded)
	f.settle(c3, ledger.Settlement{StatusCode: 200, Cost: usd("5"), Now: day3})
	f.wantUsage(k.ID, day3, usage{Spent: usd("6"), Reserved: usd("5"), DayReserved: usd("5"), Calls: 4, CapHits: 4})
	f.wantUsage(k.ID, day2, usage{Spent: usd("6"), Reserved: usd("5"), DaySpent: usd("5"), Calls: 4, CapHits: 4})
}

func testBothCaps(f *fixture) {
	t := f.t
	day1 := ledger.Day(t0).Add(9 * time.Hour)
	day2, day3 := day1.AddDate(0, 0, 1), day1.AddDate(0, 0, 2)
	k := f.newKey(func(k *ledger.Key) { k.DailyCap, k.TotalCap = capOf("5"), capOf("8") })

	first := f.reserve(k, usd("5"), day1, ledger.OutcomeForwarded)
	f.reserve(k, usd("0.000001"), day1, ledger.OutcomeCapHit) // daily cap

	res := f.reserveReq(f.request(k, usd("1"), day2, nil), ledger.OutcomeForwarded)
	if res.Remaining != usd("2") { // daily would allow 4, lifetime 2
		t.Fatalf("remaining = %s; want 2", res.Remaining)
	}
	f.reserve(k, usd("2"), day2, ledger.OutcomeForwarded)
	f.reserve(k, usd("0.000001"), day2, ledger.OutcomeCapHit) // lifetime cap, daily has $2 left

	// Releasing day 1's $5 makes lifetime room, but day 2 has only $2 left.
	f.release(first, ledger.Settlement{StatusCode: 402, Now: day2})
	f.reserve(k, usd("2.000001"), day2, ledger.OutcomeCapHit)
	f.reserve(k, usd("2"), day2, ledger.OutcomeForwarded)
	f.wantUsage(k.ID, day2, usage{Reserved: usd("5"), DayReserved: usd("5"), Calls: 4, CapHits: 3})

	// Day 3: the daily cap is fresh, the lifetime cap has $3 left.
	f.reserve(k, usd("3.000001"), day3, ledger.OutcomeCapHit)
	f.reserve(k, usd("3"), day3, ledger.OutcomeForwarded)
	f.reserve(k, usd("0.000001"), day3, ledger.OutcomeCapHit)
	f.wantUsage(k.ID, day3, usage{Reserved: usd("8"), DayReserved: usd("3"), Calls: 5, CapHits: 5})
}
