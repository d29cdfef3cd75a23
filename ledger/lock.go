package ledger

import "context"

// Locker is a Store that can hold a named lock across every node sharing
// it. A caller that does not get the lock does the locked work another time.
type Locker interface {
	// TryLock takes the lock without waiting; ok is false when another
	// holder has it. release gives it back.
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)
}
