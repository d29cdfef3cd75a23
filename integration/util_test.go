package integration

import "github.com/keybrake/keybrake/money"

func ledgerMicros(dollars int64) money.Micros { return money.Micros(dollars) * money.PerDollar }
