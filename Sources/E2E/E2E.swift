/// End-to-end sessions between forward and reverse.
