"""Rule runner and payer profiles. Rules themselves are SQL files in sql/rules/."""
