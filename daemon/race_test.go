//go:build race

package daemon

// raceDetector: the race detector multiplies memory several times over,
// so a bound on RSS holds only without it.
const raceDetector = true
