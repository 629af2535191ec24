"""`hintwise tune`: the glue that turns the feedback store and a replayed repository into
training examples for the completion adapter, judges the adapter on held-out data, and installs
it only when it is better (the training itself is `hintwise.models.tune`)."""
