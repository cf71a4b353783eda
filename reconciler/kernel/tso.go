package kernel

import "time"

// physicalShift is how many low bits of a TSO hold its logical counter; the bits above
// are the physical time in Unix milliseconds (PD's TSO layout, as tikv/client-go's
// oracle.ExtractPhysical reads it).
const physicalShift = 18

// PhysicalTime is the wall-clock time a TSO stands for (millisecond precision).
func PhysicalTime(ts uint64) time.Time {
	return time.UnixMilli(int64(ts >> physicalShift)).UTC()
}

// TSO composes the TSO of a time with logical counter 0 (for tests and lag arithmetic).
func TSO(t time.Time) uint64 {
	return uint64(t.UnixMilli()) << physicalShift
}
