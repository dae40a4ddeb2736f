package servicebus

import (
	"testing"
)

func TestSendReceiveComplete(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.ConnectionString())
	ctx := testContext(t)
	mustSend(t, ctx, c, "app-registrations", textMessage("hello"))
	r, err := c.NewReceiverForQueue("app-registrations", nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := receiveN(t, ctx, r, 1)
	if got := string(msgs[0].Body); got != "hello" {
		t.Fatalf("body %q", got)
	}
	if msgs[0].DeliveryCount != 1 {
		t.Fatalf("delivery count %d", msgs[0].DeliveryCount)
	}
	if err := r.CompleteMessage(ctx, msgs[0], nil); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats("app-registrations")
	if st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
}
