package books

import "fmt"

// Ids of the built-in books. They are the same in every clinic.
const (
	PHQ9ID = "phq-9"
	GAD7ID = "gad-7"
)

// frequencyOptions are the answers PHQ-9 and GAD-7 share: how often over
// the last two weeks.
func frequencyOptions() []Option {
	return []Option{
		{Value: 0, Label: "Not at all"},
		{Value: 1, Label: "Several days"},
		{Value: 2, Label: "More than half the days"},
		{Value: 3, Label: "Nearly every day"},
	}
}

func frequencyItems(texts []string) []Item {
	items := make([]Item, len(texts))
	for i, t := range texts {
		items[i] = Item{ID: fmt.Sprint(i + 1), Text: t, Options: frequencyOptions()}
	}
	return items
}

// PHQ9Spec is the Patient Health Questionnaire (depression), version 1.
func PHQ9Spec() Spec {
	return Spec{
		Kind:         KindQuestionnaire,
		Title:        "PHQ-9",
		Instructions: "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
		Items: frequencyItems([]string{
			"Little interest or pleasure in doing things",
			"Feeling down, depressed, or hopeless",
			"Trouble falling or staying asleep, or sleeping too much",
			"Feeling tired or having little energy",
			"Poor appetite or overeating",
			"Feeling bad about yourself — or that you are a failure or have let yourself or your family down",
			"Trouble concentrating on things, such as reading the newspaper or watching television",
			"Moving or speaking so slowly that other people could have noticed? Or the opposite — being so fidgety or restless that you have been moving around a lot more than usual",
			"Thoughts that you would be better off dead or of hurting yourself in some way",
		}),
		Bands: []Band{
			{Min: 0, Max: 4, Severity: "minimal", Label: "Minimal"},
			{Min: 5, Max: 9, Severity: "mild", Label: "Mild"},
			{Min: 10, Max: 14, Severity: "moderate", Label: "Moderate"},
			{Min: 15, Max: 19, Severity: "moderately_severe", Label: "Moderately severe"},
			{Min: 20, Max: 27, Severity: "severe", Label: "Severe"},
		},
		FlagRules: []FlagRule{{
			ItemID: "9", AtLeast: 1, Kind: FlagKindRisk, Urgent: true,
			Reason: "thoughts of being better off dead or of self-harm reported (PHQ-9 item 9 above \"Not at all\")",
		}},
	}
}

// GAD7Spec is the Generalized Anxiety Disorder scale, version 1.
func GAD7Spec() Spec {
	return Spec{
		Kind:         KindQuestionnaire,
		Title:        "GAD-7",
		Instructions: "Over the last 2 weeks, how often have you been bothered by the following problems?",
		Items: frequencyItems([]string{
			"Feeling nervous, anxious, or on edge",
			"Not being able to stop or control worrying",
			"Worrying too much about different things",
			"Trouble relaxing",
			"Being so restless that it is hard to sit still",
			"Becoming easily annoyed or irritable",
			"Feeling afraid, as if something awful might happen",
		}),
		Bands: []Band{
			{Min: 0, Max: 4, Severity: "minimal", Label: "Minimal"},
			{Min: 5, Max: 9, Severity: "mild", Label: "Mild"},
			{Min: 10, Max: 14, Severity: "moderate", Label: "Moderate"},
			{Min: 15, Max: 21, Severity: "severe", Label: "Severe"},
		},
	}
}

// BuiltIn returns the books every clinic can assign, at version 1. They are
// built from data each call; a spec that fails validation is a programming
// error caught by the tests, so it panics.
func BuiltIn() []Book {
	return []Book{mustBook(PHQ9ID, PHQ9Spec()), mustBook(GAD7ID, GAD7Spec())}
}

// BuiltInBook returns the built-in book with id, if there is one.
func BuiltInBook(id string) (Book, bool) {
	for _, b := range BuiltIn() {
		if b.ID() == id {
			return b, true
		}
	}
	return Book{}, false
}

func mustBook(id string, spec Spec) Book {
	b, err := NewBook(id, "", 1, spec)
	if err != nil {
		panic(fmt.Sprintf("built-in book %s is invalid: %v", id, err))
	}
	return b
}
