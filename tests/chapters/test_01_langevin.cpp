// chapter tests placeholder
