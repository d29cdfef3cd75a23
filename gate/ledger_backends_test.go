package gate

// The gate's tests open an embedded ledger through ledger.Open, which finds
// only the backends linked in.
import _ "github.com/keybrake/keybrake/ledger/sqlite"
