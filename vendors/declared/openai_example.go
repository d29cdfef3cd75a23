package declared

import "github.com/keybrake/keybrake/vendors"

// OpenAIChatExample is a worked declaration of an OpenAI-compatible chat
// completions API, as documented in docs/vendors.md:
//
//   - clients (the openai SDKs, with base_url pointing at Keybrake) send
//     the vault key as "Authorization: Bearer"; the real key goes upstream
//     the same way;
//   - POST /v1/chat/completions reserves
//     (max_completion_tokens, else max_tokens, else 4096) × n × the output
//     price, plus ceil(characters of messages[].content and tools ÷ 4) ×
//     the input price, a simple estimate of the prompt's tokens;
//   - a 2xx settles at usage.prompt_tokens × input price +
//     usage.completion_tokens × output price, with the completion "id" as
//     the transaction id. A streamed answer carries no usage Keybrake can
//     read: the reservation stays as a provisional ("unpriced") cost;
//   - refusals use the "json" format with x-should-retry: false, which the
//     openai SDKs obey.
//
// The prices are those of gpt-4o-mini (input $0.15 and output $0.60 per
// million tokens) as an example: set those of the most expensive model your
// keys may call, since a rule cannot tell models apart.
func OpenAIChatExample(apiKey string) Config {
	const (
		inputPrice  = "0.00000015" // $ per input token
		outputPrice = "0.0000006"  // $ per output token
	)
	return Config{
		Name:        "openai",
		Upstream:    "https://api.openai.com",
		Credential:  vendors.CredentialConfig{From: vendors.FromBearer},
		Inject:      vendors.InjectConfig{As: vendors.InjectBearer, Secret: apiKey},
		ErrorFormat: vendors.FormatJSON,
		Endpoints: []Endpoint{{
			Match: "POST /v1/chat/completions",
			Estimate: []Term{
				{Field: "max_completion_tokens|max_tokens", Default: "4096", Times: "n", PriceUSD: outputPrice, Bound: true},
				{Chars: "messages.*.content", CharsPerUnit: 4, PriceUSD: inputPrice},
				{Chars: "tools", CharsPerUnit: 4, PriceUSD: inputPrice},
			},
			Settle: SettleConfig{
				TxnIDPath: "id",
				Terms: []Term{
					{Field: "usage.prompt_tokens", PriceUSD: inputPrice},
					{Field: "usage.completion_tokens", PriceUSD: outputPrice},
				},
			},
		}},
	}
}
