package sqlite

// Dialect and CallColumns are the backend's query pieces, for the plan
// test.
var (
	Dialect     = sqliteDialect
	CallColumns = sqliteCallColumns
)
