package integration

import (
	"encoding/json"

	"github.com/keybrake/keybrake/money"
)

func ledgerMicros(dollars int64) money.Micros { return money.Micros(dollars) * money.PerDollar }

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
