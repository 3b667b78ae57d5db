// Package accuracy runs abing against emulated paths with known truth: it
// builds a testbed, starts a reflector inside it, calibrates the bottlenecks,
// runs measurements under cross traffic and compares them with what the
// router really forwarded. The demo, the integration tests and the accuracy
// report all use it.
//
// Truth, per direction:
//   - capacity: the calibrated rate (testbed.Calibrate), IP layer;
//   - cross traffic: the IP bytes the bottleneck forwarded during the
//     measurement (tc -s counters) less the probe bytes that crossed it,
//     over the same window;
//   - available bandwidth: capacity − cross traffic.
package accuracy
