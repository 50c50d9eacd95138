package graphsim_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
)

func Example() {
	s, err := graphsim.New()
	if err != nil {
		panic(err)
	}
	defer s.Close()
	s.AddMailbox("alice@contoso.test")
	s.AddMailbox("bob@contoso.test")

	body := `{"message":{"subject":"Hi","body":{"contentType":"Text","content":"Hello Bob"},
		"toRecipients":[{"emailAddress":{"address":"bob@contoso.test"}}]}}`
	req, _ := http.NewRequest("POST", s.URL()+"/users/alice@contoso.test/sendMail", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer any-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	fmt.Println(resp.StatusCode)
	for _, m := range s.Messages("bob@contoso.test", "inbox") {
		fmt.Println(m.Subject, m.From.Address, m.IsRead)
	}
	// Output:
	// 202
	// Hi alice@contoso.test false
}
