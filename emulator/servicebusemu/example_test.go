package servicebusemu_test

import (
	"context"
	"fmt"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"appreg/emulator/servicebusemu"
)

// The emulator serves the unmodified SDK: start it, hand the SDK its
// connection string, close it when done.
func Example() {
	cfg := (&servicebusemu.Config{}).AddQueue("orders", servicebusemu.EntityProperties{})
	srv, err := servicebusemu.NewServer(&servicebusemu.Options{Config: cfg})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	client, err := azservicebus.NewClientFromConnectionString(srv.ConnectionString(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	sender, err := client.NewSender("orders", nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("hello")}, nil); err != nil {
		log.Fatal(err)
	}
	receiver, err := client.NewReceiverForQueue("orders", nil)
	if err != nil {
		log.Fatal(err)
	}
	msgs, err := receiver.ReceiveMessages(ctx, 1, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := receiver.CompleteMessage(ctx, msgs[0], nil); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, delivery %d\n", msgs[0].Body, msgs[0].DeliveryCount)
	// Output: hello, delivery 1
}
