"""The MTA benchmark: our node against a throwaway Postfix, A B A B, on one machine."""
