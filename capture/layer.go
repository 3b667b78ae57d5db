package capture

import (
	"errors"
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/abing-net/abing/train"
)

// LayerTypeProbe is the gopacket layer of an abing datagram: its wire
// header (package train), and the rest of the datagram as payload. Importing
// this package registers it, and registers UDP port 8176 (train.DefaultPort)
// as carrying it, so that gopacket.NewPacket decodes abing datagrams on the
// default port; Reader finds them on any port by their magic. The number is
// one of those gopacket leaves to applications (1000–1999).
var LayerTypeProbe = gopacket.RegisterLayerType(1817, gopacket.LayerTypeMetadata{
	Name: "ABWE", Decoder: gopacket.DecodeFunc(decodeProbe),
})

func init() {
	layers.RegisterUDPPortLayerType(layers.UDPPort(train.DefaultPort), LayerTypeProbe)
}

// Probe is an abing datagram as a gopacket layer: the header, parsed and
// checked by train.ParseHeader, as its contents, and the client block and
// body as its payload.
type Probe struct {
	layers.BaseLayer
	train.Header
}

// LayerType is LayerTypeProbe.
func (p *Probe) LayerType() gopacket.LayerType { return LayerTypeProbe }

// CanDecode is LayerTypeProbe.
func (p *Probe) CanDecode() gopacket.LayerClass { return LayerTypeProbe }

// NextLayerType is the payload: the bodies are read with package train.
func (p *Probe) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// DecodeFromBytes decodes the header; data that is not an abing datagram
// of this version is an error.
func (p *Probe) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	h, err := train.ParseHeader(data)
	if err != nil {
		if errors.Is(err, train.ErrShort) {
			df.SetTruncated()
		}
		return fmt.Errorf("abing header: %w", err)
	}
	p.Header = h
	p.BaseLayer = layers.BaseLayer{Contents: data[:train.HeaderLen], Payload: data[train.HeaderLen:]}
	return nil
}

func decodeProbe(data []byte, pb gopacket.PacketBuilder) error {
	p := &Probe{}
	if err := p.DecodeFromBytes(data, pb); err != nil {
		return err
	}
	pb.AddLayer(p)
	return pb.NextDecoder(gopacket.LayerTypePayload)
}
