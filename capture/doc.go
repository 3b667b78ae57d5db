// Package capture reads abing runs out of packet captures (pcap or pcapng,
// as tcpdump, dumpcap or Wireshark write them): it decodes abing datagrams
// (a gopacket layer for the wire header, LayerTypeProbe), lists them as a
// protocol dissector does (Describe), and estimates each run offline from
// the capture's timestamps with the code of a live run (Analyze,
// measure.Recording).
//
// The capture must be taken on the sending host: there the capture stamps
// the probes as they leave and the replies as they come back, and the
// replies and reports carry the reflector's stamps. A NIC that stamps
// packets for the capture (tcpdump -j adapter_unsynced) then gives
// hardware-timestamp accuracy where the socket cannot have it.
//
// A capture file is read as hostile input: record and block lengths are
// checked before anything is allocated (pcapgo trusts them), and every
// abing field is checked as the live sender checks it.
package capture
