

pPlaceholder*
dtype0

pPlaceholder*
dtype0